"""The micro-batch pipeline against a scripted Triton: retries, bisection, rejections."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from services.common.events import InferenceRequest
from services.inference import core
from services.inference.core import Backoff, ModelInfo, Pending
from services.common.errors import UnknownModel
from services.common.triton_errors import ModelNotReady, TritonInternal, TritonUnavailable
from services.inference.metrics import VERSIONS_KEPT, InferenceMetrics
from services.inference.pipeline import InferencePipeline

FAST = Backoff(0.001, 0.004)


class FakeTriton:
    """Scripted Triton: softmax of the first three features; NaN inputs fail the whole call."""

    def __init__(self, **models: ModelInfo) -> None:
        self.models = dict(models)
        self.version = 1
        self.outage_calls = 0  # this many next calls (lookups and inferences) fail as unavailable
        self.not_ready: set[str] = set()
        self.batches: list[int] = []
        self.lookups: list[tuple[str, bool]] = []
        self.lock = threading.Lock()

    def _maybe_down(self) -> None:
        with self.lock:
            if self.outage_calls > 0:
                self.outage_calls -= 1
                raise TritonUnavailable("connection refused")

    def model_info(self, model, version=None, *, max_age_s=None):
        self.lookups.append((model, max_age_s))
        self._maybe_down()
        if model in self.not_ready:
            raise ModelNotReady(f"{model} is not loaded")
        if model not in self.models:
            raise UnknownModel(f"no model {model}")
        return self.models[model]

    def infer(self, info, version, batch):
        self._maybe_down()
        self.batches.append(len(batch))
        if np.isnan(batch).any():
            raise TritonInternal("model failed: NaN in input")
        logits = batch.reshape(len(batch), -1)[:, :3]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), self.version


def mlp(max_batch_size: int = 64, dims: tuple[int, ...] = (8,)) -> ModelInfo:
    return ModelInfo(name="mlp", datatype="FP32", dims=dims, max_batch_size=max_batch_size)


def items(n: int, model: str = "mlp", start: int = 0, **kw) -> list[Pending[int]]:
    rng = np.random.default_rng(start)
    return [
        Pending(InferenceRequest(request_id=f"{model}-{i}", model=model, features=rng.random(8).tolist(), shape=[8], **kw), i)
        for i in range(start, start + n)
    ]


def answered_ids(outcome) -> list[str]:
    return sorted(p.request_id for ans in outcome.answered for p in ans.predictions)


def rejected(outcome) -> dict[str, str]:
    return {r.item.request.request_id: r.rejection.reason for r in outcome.rejected}


@pytest.fixture
def metrics() -> InferenceMetrics:
    return InferenceMetrics()


def pipeline(triton, metrics=None, **kw) -> InferencePipeline:
    return InferencePipeline(triton, backoff=FAST, metrics=metrics, tick_s=0.01, **kw)


def test_good_requests_are_answered_in_chunks_of_the_models_batch_size(metrics):
    triton = FakeTriton(mlp=mlp(max_batch_size=4))
    batch = items(10)
    outcome = pipeline(triton, metrics).process(batch)
    assert triton.batches == [4, 4, 2]
    assert answered_ids(outcome) == sorted(p.request.request_id for p in batch)
    assert not outcome.rejected and not outcome.abandoned
    pred = outcome.answered[0].predictions[0]
    assert pred.label == int(np.argmax(pred.scores)) and pred.confidence == pytest.approx(max(pred.scores))
    assert metrics.registry.get_sample_value("modelci_inference_triton_batch_size_count", {"model": "mlp"}) == 3


def test_unknown_models_and_bad_shapes_are_rejected_and_the_rest_answered():
    triton = FakeTriton(mlp=mlp())
    bad_shape = Pending(InferenceRequest(request_id="short", model="mlp", features=[1.0] * 7, shape=[8]), 99)
    bad_dtype = Pending(InferenceRequest(request_id="ints", model="mlp", features=[1.0] * 8, shape=[8], datatype="INT64"), 98)
    batch = items(3) + items(2, model="nope") + [bad_shape, bad_dtype]
    outcome = pipeline(triton).process(batch)
    assert answered_ids(outcome) == ["mlp-0", "mlp-1", "mlp-2"]
    assert rejected(outcome) == {
        "nope-0": core.UNKNOWN_MODEL,
        "nope-1": core.UNKNOWN_MODEL,
        "short": core.WRONG_SHAPE,
        "ints": core.WRONG_DTYPE,
    }


def test_stale_metadata_is_refreshed_before_a_request_is_rejected():
    triton = FakeTriton(mlp=mlp(dims=(8,)))
    fetch = triton.model_info
    # What a cache would still hold after the model's input changed from 4 to 8 features.
    triton.model_info = lambda m, v=None, *, max_age_s=None: mlp(dims=(4,)) if max_age_s is None else fetch(m, v, max_age_s=max_age_s)
    outcome = pipeline(triton).process(items(2))
    assert answered_ids(outcome) == ["mlp-0", "mlp-1"] and not outcome.rejected


def test_an_outage_is_retried_until_triton_answers(metrics):
    triton = FakeTriton(mlp=mlp())
    triton.outage_calls = 12
    outcome = pipeline(triton, metrics).process(items(5))
    assert answered_ids(outcome) == [f"mlp-{i}" for i in range(5)]
    assert metrics.registry.get_sample_value("modelci_inference_triton_retries_total", {"kind": "unavailable"}) == 12


def test_latency_is_labelled_by_the_version_that_answered_and_old_versions_are_forgotten(metrics):
    """The label is Triton's answering version, not the one asked for; failures have none; only the
    last `VERSIONS_KEPT` answering versions keep series, so the label's values stay bounded."""
    triton = FakeTriton(mlp=mlp())
    triton.version = 3
    pipeline(triton, metrics).process(items(2, version=7))  # the request asks for 7; Triton says 3 answered
    poison = items(1, start=5)
    poison[0].request.features[0] = float("nan")
    pipeline(triton, metrics, internal_error_retries=0).process(poison)
    count = "modelci_inference_triton_latency_seconds_count"
    assert metrics.registry.get_sample_value(count, {"model": "mlp", "version": "3", "outcome": "ok"}) == 1
    assert metrics.registry.get_sample_value(count, {"model": "mlp", "version": "", "outcome": "rejected"}) == 1
    assert metrics.registry.get_sample_value(count, {"model": "mlp", "version": "7", "outcome": "ok"}) is None
    for version in range(4, 4 + VERSIONS_KEPT):
        triton.version = version
        pipeline(triton, metrics).process(items(1))
    kept = {s.labels["version"] for m in metrics.registry.collect() if m.name == "modelci_inference_triton_latency_seconds"
            for s in m.samples if s.labels.get("outcome") == "ok"}
    assert kept == {str(v) for v in range(4, 4 + VERSIONS_KEPT)}


def test_keepalive_runs_while_a_group_waits():
    triton = FakeTriton(mlp=mlp())
    triton.outage_calls = 10**9
    abort = threading.Event()
    keepalives = []
    p = InferencePipeline(triton, backoff=Backoff(0.005, 0.01), abort=abort, tick_s=0.01)
    timer = threading.Timer(0.3, abort.set)
    timer.start()
    outcome = p.process(items(4), keepalive=lambda: keepalives.append(time.monotonic()))
    assert len(keepalives) >= 5
    # Stopping during an outage abandons the batch: no output, nothing committed, redelivered.
    assert [it.ref for it in outcome.abandoned] == [0, 1, 2, 3]
    assert not outcome.answered and not outcome.rejected


def test_a_poison_request_is_isolated_by_bisection(metrics):
    triton = FakeTriton(mlp=mlp())
    batch = items(16)
    batch[5].request.features[0] = float("nan")
    outcome = pipeline(triton, metrics, internal_error_retries=2).process(batch)
    assert rejected(outcome) == {"mlp-5": core.TRITON_REJECTED}
    assert answered_ids(outcome) == sorted(f"mlp-{i}" for i in range(16) if i != 5)
    # 3 tries of the whole batch, then halves: 16 -> 8+8 -> 4+4 -> 2+2 -> 1+1 (no retries below).
    assert triton.batches[:3] == [16, 16, 16] and len(triton.batches) == 3 + 8
    assert metrics.registry.get_sample_value("modelci_inference_triton_retries_total", {"kind": "internal"}) == 2


def test_a_model_that_stays_unloaded_is_waited_for_then_dead_lettered():
    triton = FakeTriton(mlp=mlp())
    triton.not_ready.add("mlp")
    timer = threading.Timer(0.1, triton.not_ready.clear)
    timer.start()
    outcome = pipeline(triton, model_not_ready_grace_s=30).process(items(2))
    assert answered_ids(outcome) == ["mlp-0", "mlp-1"]  # loaded again within the grace period

    triton.not_ready.add("mlp")
    outcome = pipeline(triton, model_not_ready_grace_s=0.05).process(items(2))
    assert rejected(outcome) == {"mlp-0": core.UNKNOWN_MODEL, "mlp-1": core.UNKNOWN_MODEL}
