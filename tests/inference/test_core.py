"""The pure parts of the inference service: batching, validation, predictions, offsets."""

from __future__ import annotations

import random

import numpy as np
import pytest

from services.common.events import InferenceRequest
from services.inference import core
from services.inference.core import Backoff, MicroBatcher, ModelInfo, Pending
from services.inference.offsets import OffsetTracker

MLP = ModelInfo(name="mlp", datatype="FP32", dims=(8,), max_batch_size=4)


def req(i: int = 0, *, model: str = "mlp", n: int = 8, shape: list[int] | None = None, **kw) -> InferenceRequest:
    return InferenceRequest(request_id=f"r{i}", model=model, features=[float(i)] * n, shape=shape or [n], sent_at_ms=1000, **kw)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_batcher_is_due_when_full_or_when_the_first_item_has_waited_its_deadline():
    clock = Clock()
    batcher: MicroBatcher[int] = MicroBatcher(3, 0.010, clock=clock)
    assert not batcher.due() and batcher.time_left() is None
    batcher.add(Pending(req(0), 0))
    clock.now = 0.004
    batcher.add(Pending(req(1), 1))
    assert not batcher.due() and batcher.time_left() == pytest.approx(0.006)
    clock.now = 0.010
    assert batcher.due()
    assert [p.ref for p in batcher.take()] == [0, 1]
    assert len(batcher) == 0 and batcher.time_left() is None

    for i in range(4):
        batcher.add(Pending(req(i), i))
    assert batcher.due() and batcher.room() == 0
    assert [p.ref for p in batcher.take()] == [0, 1, 2]
    assert [p.ref for p in batcher.take()] == [3]  # the overflow starts a fresh batch


def test_batcher_discard_drops_selected_items():
    batcher: MicroBatcher[int] = MicroBatcher(10, 1.0)
    for i in range(5):
        batcher.add(Pending(req(i), i))
    assert [p.ref for p in batcher.discard(lambda p: p.ref % 2 == 0)] == [0, 2, 4]
    assert [p.ref for p in batcher.take()] == [1, 3]


@pytest.mark.parametrize(
    "request_kw, reason",
    [
        ({}, None),
        ({"n": 7, "shape": [8]}, core.WRONG_SHAPE),  # shape does not describe the features
        ({"shape": [2, 4]}, core.WRONG_SHAPE),  # right size, wrong dims for the model
        ({"n": 4}, core.WRONG_SHAPE),
        ({"datatype": "INT64"}, core.WRONG_DTYPE),
        ({"datatype": "fp32"}, None),
    ],
)
def test_validation(request_kw, reason):
    r = req(**request_kw)
    rejection = core.check_request(r) or core.check_against_model(r, MLP)
    assert (rejection.reason if rejection else None) == reason


TEXT = ModelInfo(name="text", datatype="INT64", dims=(6,), max_batch_size=4)


def tokens(i: int = 0, ids: list[int] | None = None, datatype: str = "INT64") -> InferenceRequest:
    ids = [i, 2, 3, 0, 0, 0] if ids is None else ids
    return InferenceRequest(request_id=f"t{i}", model="text", features=[], int_features=ids, shape=[len(ids)], datatype=datatype, sent_at_ms=1000)


@pytest.mark.parametrize(
    "request_kw, reason",
    [
        ({}, None),
        ({"ids": [1, 2, 3]}, core.WRONG_SHAPE),  # three ids where the model takes six
        ({"datatype": "FP32"}, core.WRONG_DTYPE),  # ids declared as a float request: values in the wrong list
        ({"datatype": "INT32"}, core.WRONG_DTYPE),  # right list, but the model takes INT64
        ({"datatype": "BF16"}, core.WRONG_DTYPE),  # not a datatype ModelCI-e carries
    ],
)
def test_integer_requests_carry_their_values_in_int_features(request_kw, reason):
    r = tokens(**request_kw)
    rejection = core.check_request(r) or core.check_against_model(r, TEXT)
    assert (rejection.reason if rejection else None) == reason


def test_a_float_request_with_int_features_and_an_int32_overflow_are_refused():
    both = req(int_features=[1] * 8)
    assert core.check_request(both).reason == core.WRONG_DTYPE
    big = tokens(ids=[2**40, 0, 0, 0, 0, 0], datatype="INT32")
    assert core.check_request(big).reason == core.WRONG_DTYPE  # would overflow the batch tensor


def test_integer_batches_keep_their_datatype_and_predictions_carry_the_ids():
    items = [Pending(tokens(5), 0), Pending(tokens(7), 1)]
    batch = core.input_array(items)
    assert batch.dtype == np.int64 and batch.tolist() == [[5, 2, 3, 0, 0, 0], [7, 2, 3, 0, 0, 0]]
    preds = core.predictions(items, np.array([[0.9, 0.1], [0.2, 0.8]]), answered_at_ms=1001)
    assert preds[1].int_features == [7, 2, 3, 0, 0, 0] and preds[1].features == [] and preds[1].label == 1
    small = [Pending(tokens(1, datatype="INT32"), 0)]
    assert core.input_array(small).dtype == np.int32


def test_variable_dims_accept_any_size():
    info = ModelInfo(name="seq", datatype="FP32", dims=(-1, 2), max_batch_size=8)
    assert core.check_against_model(req(n=6, shape=[3, 2]), info) is None
    assert core.check_against_model(req(n=6, shape=[2, 3]), info).reason == core.WRONG_SHAPE


def test_grouping_by_model_version_and_shape_keeps_arrival_order():
    items = [Pending(req(0), 0), Pending(req(1, model="b"), 1), Pending(req(2, version=3), 2), Pending(req(3), 3)]
    groups = core.group(items)
    assert [[p.ref for p in g] for g in groups.values()] == [[0, 3], [1], [2]]
    assert [len(c) for c in core.chunks(list(range(10)), 4)] == [4, 4, 2]  # type: ignore[arg-type]
    assert [len(c) for c in core.chunks(list(range(3)), 0)] == [1, 1, 1]  # type: ignore[arg-type]


def test_predictions_carry_scores_argmax_confidence_and_latency():
    items = [Pending(req(0), 0), Pending(req(1), 1)]
    batch = core.input_array(items)
    assert batch.shape == (2, 8) and batch.dtype == np.float32
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], dtype=np.float32)
    preds = core.predictions(items, scores, answered_at_ms=1250)
    assert [p.label for p in preds] == [1, 0]
    assert preds[0].confidence == pytest.approx(0.7)
    assert preds[0].scores == pytest.approx([0.1, 0.7, 0.2])
    assert preds[1].latency_ms == 250.0 and preds[1].requested_at_ms == 1000
    assert preds[1].request_id == "r1" and preds[1].features == [1.0] * 8


def test_assemble_makes_one_record_per_model_and_answering_version():
    def answered(model, version, refs):
        items = [Pending(req(i, model=model), i) for i in refs]
        return core.Answered(model, version, items, core.predictions(items, np.ones((len(refs), 3)) / 3))

    out = core.assemble(
        [answered("a", 1, [0, 1]), answered("b", 1, [2]), answered("a", 1, [3]), answered("a", 2, [4])],
        keep=lambda p: p.ref != 1,
    )
    summary = [(rec.model, rec.version, [p.request_id for p in rec.items], [it.ref for it in items]) for rec, items in out]
    assert summary == [("a", 1, ["r0", "r3"], [0, 3]), ("b", 1, ["r2"], [2]), ("a", 2, ["r4"], [4])]


def test_offsets_commit_only_up_to_the_first_unacknowledged():
    tracker = OffsetTracker()
    tp, other = ("t", 0), ("t", 1)
    for offset in (5, 6, 7, 8):
        tracker.track(tp, offset)
    tracker.track(other, 0)
    tracker.done(tp, 6)
    tracker.done(tp, 7)
    assert tracker.commit_points() == {}  # 5 is not acknowledged yet
    assert tracker.is_pending(tp, 5) and not tracker.is_pending(tp, 6)
    tracker.done(tp, 5)
    assert tracker.commit_points() == {tp: 8}
    assert tracker.commit_points() == {tp: 8}  # offered again until confirmed
    tracker.committed({tp: 8})
    assert tracker.commit_points() == {}
    assert tracker.pending() == 2
    tracker.forget([other])
    tracker.done(other, 0)  # acks of a revoked partition are ignored
    assert not tracker.is_pending(other, 0)
    tracker.done(tp, 8)
    assert tracker.commit_points() == {tp: 9} and tracker.pending() == 0


def test_backoff_doubles_up_to_the_cap_with_jitter():
    backoff = Backoff(0.1, 1.0, rng=random.Random(1))
    for attempt, base in [(0, 0.1), (1, 0.2), (3, 0.8), (4, 1.0), (50, 1.0)]:
        assert base * 0.5 <= backoff.delay(attempt) <= base
