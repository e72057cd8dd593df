"""The trainer on the real broker, Redis and Triton: requests in, candidates out."""

from __future__ import annotations

import io
import json
import math
import threading

import numpy as np
import pytest
import torch
import tritonclient.http as httpclient
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from infra.local.process import wait_until
from services.common import topics
from services.common.events import DeadLetter, OffsetRange, UpdateRequest
from services.common.kafka import ensure_topics
from services.common.serde import decode_event, encode_event
from services.common.triton_repo import ModelSpec, write_configs, write_version
from services.trainer.core import Trainer, choose_device
from services.trainer.metrics import TrainerMetrics
from services.trainer.samples import SampleReader
from services.trainer.state import StrategyStateStore
from tests.trainer.conftest import MODEL

pytestmark = pytest.mark.timeout(480)


def test_update_request_becomes_candidate_that_triton_serves(env, digits, triton_settings, triton_server):
    x, y = digits
    env.register()
    # 300 good samples, then 4 NaN, 3 of the wrong length and 5 repeats of sample ids.
    good = env.publish_samples(x[:300], y[:300], "good")
    nan = x[300:304].copy()
    nan[:, 5] = np.nan
    bad_nan = env.publish_samples(nan, y[300:304], "nan")
    bad_shape = env.publish_samples(x[304:307], y[304:307], "short", features=[list(r[:60]) for r in x[304:307]])
    dup = env.publish_samples(x[:5], y[:5], "good")
    app = env.start()
    req = env.request([OffsetRange(0, good.start, dup.end)])
    [cand] = env.candidates(1)

    assert cand.outcome == "succeeded", cand.reason
    assert (cand.update_id, cand.base_version, cand.version, cand.strategy) == (req.event_id, 1, 2, "replay")
    assert cand.samples_used == 300
    assert cand.metrics["samples_skipped"] == 12
    assert cand.sample_ranges == [OffsetRange(0, good.start, dup.end)]
    assert json.loads(cand.hyperparameters["epochs"]) == 10
    assert cand.code_version.startswith("modelci-e ") and cand.device == "cpu"
    for key in ("accuracy_new_holdout", "base_accuracy_new_holdout", "loss"):
        assert 0.0 <= cand.metrics[key] <= (math.inf if key == "loss" else 1.0)
    # Ten epochs on ~240 digits beat the untrained version 1 on the held-back 60.
    assert cand.metrics["accuracy_new_holdout"] > cand.metrics["base_accuracy_new_holdout"]
    assert cand.metrics["samples_train"] + cand.metrics["samples_holdout"] == 300

    version = env.registry.require_version(MODEL, 2)
    assert version.status == "candidate" and version.base_version == 1
    assert (version.artifact_uri, version.artifact_sha256) == (cand.artifact_uri, cand.artifact_sha256)
    assert version.report["skipped"] == {"nan": 4, "wrong_shape": 3, "duplicate": 5}
    assert version.update_id == req.event_id
    # The plain weights are stored too, readable without unpickling objects.
    weights = torch.load(io.BytesIO(env.store.get(version.report["weights_uri"], version.report["weights_sha256"])), weights_only=True)
    assert set(weights) >= {"1.weight", "5.bias"}
    skipped = app.metrics.samples_skipped
    assert skipped.labels(MODEL, "nan")._value.get() == 4 and skipped.labels(MODEL, "wrong_shape")._value.get() == 3
    assert env.lock_free()

    # The artifact loads and serves in the real Triton, giving probabilities.
    name = f"trainer-{cand.update_id[:8]}"
    write_configs(triton_server.model_repository, ModelSpec(name, (64,), 10))
    write_version(triton_server.model_repository, name, 2, env.store.get(cand.artifact_uri, cand.artifact_sha256))
    client = httpclient.InferenceServerClient(triton_settings.http_url)
    client.load_model(name)
    try:
        inp = httpclient.InferInput("INPUT__0", [4, 64], "FP32")
        inp.set_data_from_numpy(x[:4])
        out = client.infer(name, [inp], model_version="2").as_numpy("OUTPUT__0")
        assert out.shape == (4, 10)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    finally:
        client.unload_model(name)
        client.close()


def test_restarted_trainer_continues_from_persisted_strategy_state(env, digits):
    x, y = digits
    env.register()
    low, high = np.flatnonzero(y < 5)[:200], np.flatnonzero(y >= 5)[:200]
    first = env.publish_samples(x[low], y[low], "a")
    second = env.publish_samples(x[high], y[high], "b")

    app = env.start()
    env.request([first])
    [c1] = env.candidates(1)
    assert c1.outcome == "succeeded", c1.reason
    assert c1.metrics["memory_size"] == 0  # nothing older than the first update
    env.stop(app)

    env.start()  # a new trainer instance: the replay memory must come from the persisted state
    env.request([second], base_version=c1.version)
    _, c2 = env.candidates(2)
    assert c2.outcome == "succeeded", c2.reason
    assert c2.base_version == c1.version and c2.version == c1.version + 1
    assert c2.metrics["memory_size"] > 0
    assert env.registry.require_version(MODEL, c2.version).report["strategy_state_from_version"] == c1.version
    # The memory holds update 1's classes (0-4), on which the candidate is evaluated.
    assert "accuracy_memory" in c2.metrics and "base_accuracy_memory" in c2.metrics
    # Update 2 started from update 1's weights: the base already knows classes 0-4.
    assert c2.metrics["base_accuracy_memory"] > 0.5


def test_second_request_for_the_same_model_waits_for_the_lock(env, digits):
    x, y = digits
    env.register()
    r1 = env.publish_samples(x[:300], y[:300], "one")
    r2 = env.publish_samples(x[300:600], y[300:600], "two")
    settings = env.settings()

    def trainer() -> Trainer:
        client = env.redis.client()
        return Trainer(
            settings=settings,
            registry=env.registry,
            store=env.store,
            states=StrategyStateStore(client, env.store, env.redis.key_prefix),
            reader=SampleReader(env.kafka),
            redis=client,
            metrics=TrainerMetrics(),
            device=choose_device("cpu"),
        )

    requests = [UpdateRequest(model=MODEL, base_version=1, reason="manual", sample_ranges=[r]) for r in (r1, r2)]
    trainers = [trainer(), trainer()]
    results: dict[int, object] = {}
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = trainers[i].process(requests[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert all(c.outcome == "succeeded" for c in results.values()), [c.reason for c in results.values()]
    versions = [env.registry.require_version(MODEL, c.version) for c in results.values()]
    spans = sorted((v.report["lock_acquired_at_ms"], v.report["trained_at_ms"]) for v in versions)
    assert spans[0][1] <= spans[1][0], f"updates overlapped: {spans}"
    waited = sorted(c.metrics["lock_wait_seconds"] for c in results.values())
    assert waited[1] > 0
    assert sum(t.metrics.lock_waits.labels(MODEL)._value.get() for t in trainers) == 1
    assert sorted(c.version for c in results.values()) == [2, 3]
    assert env.lock_free()


def test_bad_requests_fail_with_their_reason_and_release_the_lock(env, digits):
    x, y = digits
    env.register()
    ok = env.publish_samples(x[:100], y[:100], "ok")
    # A samples topic whose first record was deleted (as retention would): its offsets are gone.
    ensure_topics(env.kafka, {"cl.samples.old": 1})
    old = env.publish_samples(x[:100], y[:100], "old", topic="cl.samples.old")
    gone = TopicPartition(env.kafka.topic("cl.samples.old"), 0, old.start + 1)
    admin = AdminClient(env.kafka.confluent_config())  # kept referenced until the future resolves
    admin.delete_records([gone])[gone].result(timeout=60)
    env.start()
    reqs = {
        "deleted_offsets": env.request([old], samples_topic="cl.samples.old"),
        "unknown_model": env.request([ok], model="nope"),
        "no_samples": env.request([]),
        "empty_range": env.request([OffsetRange(0, ok.start, ok.start)]),
        "offsets_out_of_range": env.request([OffsetRange(0, ok.start, ok.end + 1000)]),
        "missing_partition": env.request([OffsetRange(7, 0, 1)]),
        "unknown_strategy": env.request([ok], strategy="no-such-strategy"),
        "invalid_hyperparameters": env.request([ok], hyperparameters={"lr": "-1"}),
        "not_json": env.request([ok], hyperparameters={"epochs": "three"}),
        "unknown_base_version": env.request([ok], base_version=42),
    }
    env.send(b"\x00not avro at all")
    good = env.request([ok])
    env.send(encode_event(good))  # redelivered: answered once
    cands = env.candidates(len(reqs) + 1)
    by_id = {c.update_id: c for c in cands}
    expected = {
        "deleted_offsets": "offsets_out_of_range",
        "unknown_model": "unknown_model",
        "no_samples": "no_samples",
        "empty_range": "no_samples",
        "offsets_out_of_range": "offsets_out_of_range",
        "missing_partition": "offsets_out_of_range",
        "unknown_strategy": "unknown_strategy",
        "invalid_hyperparameters": "invalid_hyperparameters",
        "not_json": "invalid_hyperparameters",
        "unknown_base_version": "unknown_base_version",
    }
    for case, req in reqs.items():
        cand = by_id[req.event_id]
        assert (cand.outcome, cand.reason) == ("failed", expected[case]), case
        assert cand.artifact_uri is None and cand.version is None
        assert cand.strategy == (req.strategy or ("" if case == "unknown_model" else "replay"))
    assert by_id[good.event_id].outcome == "succeeded"
    [letter] = env.candidates(1, topic=topics.dlq(topics.UPDATES))
    assert decode_event(DeadLetter, letter.value()).reason == "bad_marker"
    # Only the one good request made a version; every lock was released.
    assert [v.version for v in env.registry.list_versions(MODEL)] == [1, 2]
    assert env.lock_free() and env.lock_free("nope")
    # The duplicate is skipped, not retrained: wait for its offset to be committed, then count.
    app = env.apps[0][0]
    wait_until(lambda: app.metrics.duplicates._value.get() == 1, 60, "duplicate skipped")
    assert env.count(topics.CANDIDATES) == len(reqs) + 1


def test_trainer_process_serves_metrics_trains_and_stops_on_sigterm(env, digits, tmp_path):
    """``python -m services.trainer`` end to end: settings from the environment, /metrics, SIGTERM."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from infra.local.process import free_port
    from tests.fixtures.infra import REPO

    x, y = digits
    env.register()
    ok = env.publish_samples(x[:100], y[:100], "proc")
    port = free_port()
    proc_env = dict(
        os.environ,
        MODELCI_KAFKA_BOOTSTRAP_SERVERS=env.kafka.bootstrap_servers,
        MODELCI_KAFKA_TOPIC_PREFIX=env.kafka.topic_prefix,
        MODELCI_REDIS_URL=env.redis.url.get_secret_value(),
        MODELCI_REDIS_KEY_PREFIX=env.redis.key_prefix,
        MODELCI_TRAINER_ARTIFACT_ROOT=str(env.root / "artifacts"),
        MODELCI_TRAINER_DEVICE="cpu",
        MODELCI_TRAINER_CONTROL_WATCH_TRITON="false",
        MODELCI_METRICS_PORT=str(port),
    )
    proc = subprocess.Popen([sys.executable, "-m", "services.trainer"], cwd=REPO, env=proc_env, stderr=open(tmp_path / "trainer.log", "w"))
    try:
        req = env.request([ok])
        [cand] = env.candidates(1)
        assert (cand.update_id, cand.outcome) == (req.event_id, "succeeded")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'modelci_trainer_updates_finished_total{model="digits"} 1.0' in metrics
        assert 'modelci_trainer_device{device="cpu"} 1.0' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "trainer.log").read_text()
    assert '"event": "trainer_ready"' in log and '"device": "cpu"' in log


@pytest.mark.parametrize(
    ("factory", "kwargs", "shape", "output"),
    [
        ("strategies.models:make_tabular", {"input_dim": 64, "num_classes": 10}, [64], "logits"),
        ("strategies.models:make_cnn", {"in_channels": 1, "num_classes": 10, "width": 8}, [1, 8, 8], "logits"),
        ("tests.trainer.test_trainer_service:softmax_mlp", {}, [64], "probabilities"),
    ],
    ids=["tabular-bn-dropout", "cnn", "probabilities-out"],
)
def test_the_registered_architecture_is_what_the_trainer_updates(env, digits, factory, kwargs, shape, output):
    """Not the demo's MLP: the trainer rebuilds the team's own module from its factory, trains it
    and exports it; the candidate's weights are that module's, and it answers with probabilities."""
    from strategies.architecture import Architecture

    x, y = digits
    arch = Architecture(factory, kwargs, output)
    module = env.register_architecture(MODEL, arch, shape)
    good = env.publish_samples(x[:400], y[:400], "fam")
    env.start()
    env.request([good])
    [cand] = env.candidates(1)
    assert cand.outcome == "succeeded", cand.reason
    assert cand.metrics["accuracy_new_holdout"] > cand.metrics["base_accuracy_new_holdout"]
    version = env.registry.require_version(MODEL, 2)
    weights = torch.load(io.BytesIO(env.store.get(version.report["weights_uri"], version.report["weights_sha256"])), weights_only=True)
    assert set(weights) == set(module.state_dict()), "the weights are the team's module's, under its own names"
    served = torch.jit.load(io.BytesIO(env.store.get(cand.artifact_uri, cand.artifact_sha256)))
    probs = served(torch.from_numpy(x[400:420]).reshape(20, *shape))
    assert probs.shape == (20, 10)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(20), atol=1e-5, rtol=0)
    rebuilt = arch.build()
    rebuilt.load_state_dict(weights)
    eager = rebuilt.eval()(torch.from_numpy(x[400:420]).reshape(20, *shape))
    torch.testing.assert_close(probs, eager if output == "probabilities" else torch.softmax(eager, dim=1), atol=1e-5, rtol=0)


def softmax_mlp() -> torch.nn.Module:
    """A team's module that returns probabilities itself (registered with output=probabilities)."""
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))


def test_a_text_model_on_int64_token_ids_is_updated_on_its_ids(env):
    """Token ids stay integers from the samples topic to the exported candidate: an
    EmbeddingBag classifier registered as INT64 is trained on the ids and served taking INT64."""
    from strategies.architecture import Architecture
    from strategies.streams import get_stream

    stream = get_stream("text-topics", seed=0)
    assert stream.datatype == "INT64"
    shape = [int(d) for d in stream.input_shape]
    exp = stream.experiences[0]
    x, y = exp.x_train.numpy(), exp.y_train.numpy()
    arch = Architecture("strategies.models:make_text", {"num_classes": stream.num_classes, "input_shape": shape})
    env.register_architecture(MODEL, arch, shape, datatype="INT64", classes=[str(c) for c in range(stream.num_classes)])
    good = env.publish_samples(x[:600], y[:600], "txt")
    env.start()
    env.request([good])
    [cand] = env.candidates(1)
    assert cand.outcome == "succeeded", cand.reason
    assert cand.metrics["samples_train"] + cand.metrics["samples_holdout"] == 600
    assert cand.metrics["accuracy_new_holdout"] > cand.metrics["base_accuracy_new_holdout"]
    served = torch.jit.load(io.BytesIO(env.store.get(cand.artifact_uri, cand.artifact_sha256)))
    xt, yt = stream.test_set(0)
    probs = served(xt[:200].to(torch.int64))
    assert probs.shape == (200, stream.num_classes)
    assert float((probs.argmax(1) == yt[:200]).float().mean()) >= 0.8, "the candidate learned the topics from the ids"
