"""The validation gate on real Triton and Redis: every bad candidate is rejected with its reason
and the serving version is untouched; a good one passes and serves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from services.common.registry import VersionStatus
from tests.deployer import models
from tests.deployer.conftest import sample_batch
from tests.deployer.helpers import candidate, fake_sha


def _feed(env, offsets, concept="a", per=150, version=1) -> None:
    for off in offsets:
        x, y = models.dataset(per, concept, seed=100 + off)
        env.deployer.handle_samples(sample_batch(env.name, x, y, version), partition=0, offset=off)


def _bad_artifacts(trained: dict[str, bytes], tmp_path: Path) -> dict[str, dict]:
    state = io.BytesIO()
    torch.save(models.MLP().state_dict(), state)
    wrong_in = models.script(models.MLP(dim=5), dim=5)
    wrong_out = models.script(models.MLP(classes=5))
    nan = models.script(models.NaNModel())
    return {
        "artifact_missing": {"artifact": None, "uri": (tmp_path / "gone.pt").as_uri(), "sha256": "0" * 64},
        "artifact_corrupt": {"artifact": b"\x00garbage" * 100},
        "not_torchscript": {"artifact": state.getvalue()},
        "wrong_input_shape": {"artifact": wrong_in},
        "wrong_output_shape": {"artifact": wrong_out},
        "non_finite_output": {"artifact": nan},
        "hash_mismatch": {"artifact": trained["good"], "sha256": fake_sha(trained["good"])},
        "accuracy_regression": {"artifact": trained["poisoned"]},
    }


def test_bad_candidates_are_rejected_and_serving_untouched(env, trained, tmp_path):
    # "good" and v1 are two equally good models of one concept: on the ~90 held-out fresh samples
    # one wrong answer separates them, which the default policy's paired allowance
    # (`confidence_z`) absorbs; the poisoned one fails by far more.
    env.register(trained["v1"])
    _feed(env, range(0, 3))  # older concept-A samples: the replay set
    _feed(env, range(5, 8))  # after the candidates' ranges [3, 5): fresh samples
    probe = models.dataset(16, "a", seed=7)[0]
    before = env.unpinned(probe)

    for reason, spec in _bad_artifacts(trained, tmp_path).items():
        cand = candidate(env, spec["artifact"], sha256=spec.get("sha256"), uri=spec.get("uri"))
        env.deployer.handle_candidate(cand)
        record = env.registry.require_version(env.name, cand.version)
        assert record.status == VersionStatus.REJECTED, reason
        assert reason in record.report["reasons"], (reason, record.report["reasons"])
        event = env.events[-1]
        assert (event.action, event.version) == ("rejected", cand.version)
        assert reason in event.reasons
        assert env.registry.require_model(env.name).serving_version == 1
        assert np.allclose(env.unpinned(probe), before), f"serving changed after {reason}"
        assert not (env.repository / env.name / str(cand.version)).exists()

    rejected = env.deployer.metrics.rejected
    assert all(rejected.labels(env.name, reason)._value.get() == 1 for reason in _bad_artifacts(trained, tmp_path))
    poisoned = env.registry.require_version(env.name, cand.version)
    checks = {c["name"]: c for c in poisoned.report["checks"]}
    assert checks["accuracy_fresh"]["values"]["candidate"] < checks["accuracy_fresh"]["values"]["serving"]
    assert not checks["forgetting"]["passed"]

    good = candidate(env, trained["good"])
    env.deployer.handle_candidate(good)
    record = env.registry.require_version(env.name, good.version)
    assert record.status == VersionStatus.SERVING, record.report
    names = {c["name"]: c for c in record.report["checks"]}
    assert {"artifact_hash", "torchscript", "shapes", "outputs", "accuracy_fresh", "forgetting", "shadow", "latency"} <= set(names)
    assert names["latency"]["values"]["candidate_p99_ms"] > 0
    assert len(names["latency"]["values"]["probes"]) in (1, 2)
    assert [e.action for e in env.events[-2:]] == ["validated", "deployed"]
    assert env.registry.require_model(env.name).serving_version == good.version
    expected = torch.jit.load(io.BytesIO(trained["good"]))(torch.from_numpy(probe)).detach().numpy()
    assert np.allclose(env.unpinned(probe), expected, atol=1e-5)
    # Triton serves exactly the new version; the previous one is the registry's rollback target.
    assert env.triton.ready_versions(env.name) == {good.version}
    assert env.registry.require_model(env.name).previous_version == 1
    assert env.deployer.metrics.serving_version.labels(env.name)._value.get() == good.version
    assert env.registry.require_version(env.name, 1).status == VersionStatus.RETIRED
    # A replayed candidate event changes nothing (idempotent on the event id).
    n = len(env.events)
    env.deployer.handle_candidate(good)
    assert len(env.events) == n


def test_a_slower_candidate_fails_two_latency_probes_and_is_rejected(env, trained):
    # As accurate as the serving version (same answers as "good"), ~100x slower per request: every
    # check before latency passes, and the confirming second probe rejects it again.
    env.register(trained["v1"], policy={"probe_requests": 20})
    _feed(env, range(0, 3))
    _feed(env, range(5, 8))
    slow = candidate(env, trained["slow"])
    env.deployer.handle_candidate(slow)
    record = env.registry.require_version(env.name, slow.version)
    assert record.status == VersionStatus.REJECTED, record.report
    assert record.report["reasons"] == ["latency"]
    latency = {c["name"]: c for c in record.report["checks"]}["latency"]["values"]
    assert len(latency["probes"]) == 2
    assert all(p["candidate_p99_ms"] > p["bound_ms"] > p["serving_p99_ms"] for p in latency["probes"])
    assert env.registry.require_model(env.name).serving_version == 1
    assert env.triton.ready_versions(env.name) == {1}
