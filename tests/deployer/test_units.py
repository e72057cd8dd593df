"""Pure parts of the deployer: policies, CPU checks on bad artifacts, repository layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from services.common.errors import ConfigurationError
from services.deployer import checks
from services.deployer.checks import CandidateInvalid
from services.deployer.core import clean
from services.deployer.policy import Policy, parse_policy_text
from services.deployer.publisher import POLICY, ensure_configs
from services.common.registry import ModelRecord
from services.common.tensors import InputSpec
from tests.deployer import models


def test_policy_defaults_parsing_and_validation():
    assert Policy.from_dict(None).promotion == "auto"
    parsed = parse_policy_text("promotion=manual,accuracy_margin=0.02,check_latency=false")
    assert parsed["promotion"] == "manual" and parsed["accuracy_margin"] == 0.02 and parsed["check_latency"] is False
    assert parse_policy_text('{"canary": "none"}')["canary"] == "none"
    with pytest.raises(ConfigurationError):
        Policy.from_dict({"promotion": "sometimes"})
    with pytest.raises(ConfigurationError):
        Policy.from_dict({"no_such_key": 1})
    with pytest.raises(ConfigurationError):
        Policy.from_dict({"validation_samples": 0})


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: b"garbage" * 10, "artifact_corrupt"),
        (lambda: _state_dict(), "not_torchscript"),
    ],
)
def test_unloadable_artifacts(make, reason):
    with pytest.raises(CandidateInvalid) as info:
        checks.load_torchscript(make())
    assert info.value.check.reason == reason


def _state_dict() -> bytes:
    buf = io.BytesIO()
    torch.save(models.MLP().state_dict(), buf)
    return buf.getvalue()


def test_shape_and_output_checks():
    good = checks.load_torchscript(models.script(models.MLP()))[0]
    assert checks.check_shapes(good, InputSpec((models.DIM,)), models.CLASSES).passed
    with pytest.raises(CandidateInvalid) as info:
        checks.check_shapes(good, InputSpec((models.DIM,)), models.CLASSES + 1)
    assert info.value.check.reason == "wrong_output_shape"
    with pytest.raises(CandidateInvalid) as info:
        checks.check_shapes(good, InputSpec((models.DIM + 3,)), models.CLASSES)
    assert info.value.check.reason == "wrong_input_shape"
    with pytest.raises(CandidateInvalid) as info:  # a float model registered as taking token ids
        checks.check_shapes(good, InputSpec((models.DIM,), "INT64"), models.CLASSES)
    assert info.value.check.reason == "wrong_input_shape"
    nan = checks.load_torchscript(models.script(models.NaNModel()))[0]
    with pytest.raises(CandidateInvalid) as info:
        checks.check_outputs(nan, np.ones((4, models.DIM), np.float32))
    assert info.value.check.reason == "non_finite_output"


def test_configs_written_once_and_report_json_safe(tmp_path):
    model = ModelRecord(name="m", input_shape=[models.DIM], classes=["a", "b", "c"])
    ensure_configs(tmp_path, model)
    local = tmp_path / "m" / "configs" / "local.pbtxt"
    assert POLICY in local.read_text() and "pytorch_libtorch" in (tmp_path / "m" / "config.pbtxt").read_text()
    stamp = local.stat().st_mtime_ns
    ensure_configs(tmp_path, model)
    assert local.stat().st_mtime_ns == stamp, "an unchanged config must not be rewritten (Triton would reload)"
    assert clean({"a": float("nan"), "b": [np.float32(1.5)], "c": np.int64(2)}) == {"a": None, "b": [1.5], "c": 2}


def test_policy_and_strategy_commands_update_the_registry(settings):
    from services.common.events import Command
    from services.deployer.app import build_deployer

    dep = build_deployer(settings, lambda event: None)
    dep.registry.put_model(ModelRecord(name="cmdmodel", input_shape=[models.DIM], classes=["a", "b", "c"]))
    dep.handle_command(Command(model="cmdmodel", action="set_policy", actor="ops",
                               params={"policy": '{"promotion": "manual", "accuracy_margin": 0.01}'}))
    dep.handle_command(Command(model="cmdmodel", action="set_strategy", actor="ops",
                               params={"strategy": "ewc", "hyperparameters": '{"ewc_lambda": 0.4}'}))
    model = dep.registry.require_model("cmdmodel")
    assert model.policy["promotion"] == "manual" and model.policy["accuracy_margin"] == 0.01
    assert (model.strategy, model.hyperparameters) == ("ewc", {"ewc_lambda": 0.4})
    with pytest.raises(ConfigurationError):
        dep.handle_command(Command(model="cmdmodel", action="set_policy", actor="ops", params={"policy": '{"bogus": 1}'}))


def test_paired_comparison_allows_noise_but_not_a_real_regression():
    from services.deployer.gate import compare_paired

    rng = np.random.default_rng(0)
    serving = rng.random(100) < 0.95
    equal = serving.copy()
    equal[np.flatnonzero(serving)[:1]] = False  # one answer in a hundred: noise
    assert compare_paired("a", "worse", equal, serving, 0.0, 1.64, "s").passed
    assert not compare_paired("a", "worse", equal, serving, 0.0, 0.0, "s").passed, "point estimates alone fail an equal model"
    worse = serving.copy()
    worse[np.flatnonzero(serving)[:15]] = False  # 15 points worse
    check = compare_paired("a", "worse", worse, serving, 0.0, 1.64, "s")
    assert not check.passed and check.reason == "worse" and check.values["standard_error"] > 0
    assert compare_paired("a", "worse", worse, None, 0.0, 1.64, "s").passed  # nothing serving: nothing to regress from
    with pytest.raises(ConfigurationError):
        Policy.from_dict({"confidence_z": -1})


def test_sample_store_windows_and_bounded_reservoir(redis_settings):
    from services.common.tensors import content_buckets
    from services.deployer.samples import SampleStore
    from tests.deployer.conftest import sample_batch

    store = SampleStore(redis_settings.client(), redis_settings.key_prefix, recent_capacity=50, replay_capacity=30)
    data = {offset: models.dataset(20, "a", seed=offset) for offset in range(10)}
    for offset, (x, y) in data.items():
        store.add(sample_batch("s", x, y, version=1 if offset < 5 else 2), partition=0, offset=offset)
    store.add(sample_batch("s", *data[9], version=2), partition=0, offset=9)  # a replayed record
    # holdout_fraction 1: every input counts as held out, so the windows alone decide.
    fresh = store.fresh("s", [{"partition": 0, "start": 5, "end": 8}], holdout_fraction=1.0, minimum=10)
    assert (len(fresh), fresh.source) == (40, "after_training_ranges")  # offsets 8 and 9, the replay deduplicated
    fallback = store.fresh("s", [{"partition": 0, "start": 7, "end": 10}], holdout_fraction=1.0, minimum=100)
    assert fallback.source == "holdout_of_training_ranges" and len(fallback) == 50  # the 50 kept, all inside the ranges
    older = store.older("s", {0: 8})
    assert len(older) == 30 + 10  # the full reservoir (evicted offsets 0..7) + the window's offset 7
    assert len(store.latest("s", 15)) == 15
    assert store.live_count("s", 1) == 100
    # The gate's validation_samples bound: the latest fresh samples, an even spread of the older ones.
    latest = store.fresh("s", [{"partition": 0, "start": 5, "end": 8}], holdout_fraction=1.0, minimum=10, limit=15)
    assert len(latest) == 15 and latest.source == "after_training_ranges"
    assert all(any(np.allclose(row, n) for n in data[9][0]) for row in latest.features), "the newest record's samples"
    spread = store.older("s", {0: 8}, limit=12)
    assert len(spread) == 12 and all(any(np.array_equal(row, o) for o in older.features) for row in spread.features)
    assert not np.array_equal(spread.features, older.features[:12]), "an even spread, not the first ones"
    # A real fraction: only inputs whose content hash the trainer holds back, the same rule as its split.
    unseen = store.fresh("s", [{"partition": 0, "start": 5, "end": 8}], holdout_fraction=0.3, minimum=1)
    after = np.concatenate([data[8][0], data[9][0]]).astype(np.float32)
    want = after[content_buckets(after) < 0.3]
    assert 0 < len(unseen) < 40 and sorted(map(tuple, unseen.features)) == sorted(map(tuple, want))


def test_the_gate_scores_no_input_the_trainer_trained_on_even_when_it_recurs(redis_settings):
    """The same inputs arrive again under new request ids after the training ranges: the fresh
    set holds only those the trainer's split (the same content hash) kept out of training."""
    from services.deployer.samples import SampleStore
    from services.trainer.sample_set import SampleSet
    from tests.deployer.conftest import sample_batch

    store = SampleStore(redis_settings.client(), redis_settings.key_prefix)
    x, y = models.dataset(100, "a", seed=3)
    store.add(sample_batch("dup", x, y, version=1), partition=0, offset=0)  # the update's training range
    store.add(sample_batch("dup", x[::-1], y[::-1], version=1), partition=0, offset=1)  # the same inputs again
    train, _ = SampleSet([f"r{i}" for i in range(len(y))], x.astype(np.float32), y).split(0.2)
    fresh = store.fresh("dup", [{"partition": 0, "start": 0, "end": 1}], holdout_fraction=0.2, minimum=1)
    trained = {tuple(r) for r in train.x}
    assert len(fresh) and not any(tuple(r) in trained for r in fresh.features)


def test_replayed_sample_records_are_counted_once(settings):
    from services.deployer.app import build_deployer
    from tests.deployer.conftest import sample_batch

    dep = build_deployer(settings, lambda event: None)
    batch = sample_batch("replayed", *models.dataset(10, "a"), version=1)
    for _ in range(2):
        dep.handle_samples(batch, partition=0, offset=3)
    assert dep.samples.live_count("replayed", 1) == 10
    dep.handle_samples(sample_batch("replayed", *models.dataset(5, "a"), version=1), partition=0, offset=4)
    assert dep.samples.live_count("replayed", 1) == 15


def test_sample_store_keeps_an_integer_models_token_ids_exactly(redis_settings):
    from services.common.events import LabeledSample, LabeledSampleBatch
    from services.deployer.samples import SampleStore

    store = SampleStore(redis_settings.client(), redis_settings.key_prefix)
    ids = [[i, 2**40, 0, 0] for i in range(6)]
    items = [LabeledSample(sample_id=f"t{i}", model_version=1, features=[], int_features=row, label=i % 2, predicted=0,
                           confidence=0.9, prediction_partition=0, prediction_offset=i, feedback_partition=0, feedback_offset=i)
             for i, row in enumerate(ids)]
    store.add(LabeledSampleBatch(model="txt", items=items), partition=0, offset=3)
    latest = store.latest("txt", 10)
    x = latest.inputs(InputSpec((4,), "INT64"))
    assert x.dtype == np.int64 and x.tolist() == ids and latest.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert store.fresh("txt", [{"partition": 0, "start": 0, "end": 3}], 1.0, 1).inputs(InputSpec((2, 2), "INT64")).shape == (6, 2, 2)
