"""Post-deploy watch and rollback: a deployed version that does worse on live joined samples
than the one before it is rolled back automatically; a rollback command restores a version."""

from __future__ import annotations

import io
import json

import numpy as np
import torch

from services.common.events import Command
from services.common.registry import VersionStatus
from tests.deployer import models
from tests.deployer.conftest import sample_batch
from tests.deployer.helpers import candidate


def _v1_output(trained, x):
    return torch.jit.load(io.BytesIO(trained["v1"]))(torch.from_numpy(x)).detach().numpy()


def test_live_regression_rolls_back_automatically(env, trained):
    env.register(trained["v1"], policy={"watch_min_samples": 40, "watch_window": 200, "watch_tolerance": 0.1, "check_latency": False})
    x, y = models.dataset(120, "a", seed=31)
    # Version 1 served well: 90% of its live predictions were right.
    predicted = y.copy()
    predicted[:12] = (y[:12] + 1) % models.CLASSES
    env.deployer.handle_samples(sample_batch(env.name, x, y, 1, predicted), partition=0, offset=0)
    cand = candidate(env, trained["good"], ranges=((0, 0, 1),))
    env.deployer.handle_candidate(cand)
    assert env.registry.require_model(env.name).serving_version == cand.version
    # Then version 2's live predictions turn out mostly wrong (an injected regression).
    x2, y2 = models.dataset(30, "a", seed=32)
    env.deployer.handle_samples(sample_batch(env.name, x2, y2, cand.version, (y2 + 1) % 3), partition=0, offset=1)
    assert env.registry.require_model(env.name).serving_version == cand.version, "no decision before watch_min_samples"
    x3, y3 = models.dataset(30, "a", seed=33)
    env.deployer.handle_samples(sample_batch(env.name, x3, y3, cand.version, (y3 + 1) % 3), partition=0, offset=2)

    model = env.registry.require_model(env.name)
    assert model.serving_version == 1
    assert env.registry.require_version(env.name, cand.version).status == VersionStatus.ROLLED_BACK
    assert env.registry.require_version(env.name, 1).status == VersionStatus.SERVING
    event = env.events[-1]
    assert (event.action, event.version, event.previous_version) == ("rolled_back", 1, cand.version)
    evidence = json.loads(event.report)
    assert evidence["live_accuracy_new"] < evidence["live_accuracy_previous"] - 0.1
    assert env.triton.ready_versions(env.name) == {1}
    probe = models.dataset(8, "a", seed=3)[0]
    assert np.allclose(env.unpinned(probe), _v1_output(trained, probe), atol=1e-5)


def test_healthy_version_passes_watch_and_manual_rollback_restores(env, trained):
    env.register(trained["v1"], policy={"watch_min_samples": 20, "watch_window": 40, "check_latency": False})
    x, y = models.dataset(60, "a", seed=41)
    env.deployer.handle_samples(sample_batch(env.name, x, y, 1), partition=0, offset=0)
    cand = candidate(env, trained["good"], ranges=((0, 0, 1),))
    env.deployer.handle_candidate(cand)
    x2, y2 = models.dataset(40, "a", seed=42)
    env.deployer.handle_samples(sample_batch(env.name, x2, y2, cand.version), partition=0, offset=1)
    record = env.registry.require_version(env.name, cand.version)
    assert record.status == VersionStatus.SERVING and record.report["watch"]["passed"]

    env.deployer.handle_command(Command(model=env.name, action="rollback", actor="alice"))
    assert env.registry.require_model(env.name).serving_version == 1
    rolled = env.registry.require_version(env.name, cand.version)
    assert rolled.status == VersionStatus.ROLLED_BACK
    assert rolled.history[-1]["actor"] == "alice"
    assert env.events[-1].action == "rolled_back" and env.events[-1].actor == "alice"
    probe = models.dataset(8, "a", seed=3)[0]
    assert np.allclose(env.unpinned(probe), _v1_output(trained, probe), atol=1e-5)
