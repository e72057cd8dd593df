"""Restart after a crash: the deployer reconciles the registry with Triton's repository index and
the folders on disk, whatever moment it died at."""

from __future__ import annotations

import numpy as np

from services.common.registry import VersionStatus
from services.common.triton_repo import versions_on_disk, write_version
from services.deployer.app import build_deployer
from services.deployer.publisher import remove_version
from services.deployer.reconcile import reconcile
from tests.deployer import models
from tests.deployer.helpers import candidate


def _restart(env):
    """A fresh deployer (no memory of the old one) reconciling at start-up."""
    env.deployer = build_deployer(env.settings, env.events.append)
    return reconcile(env.deployer)


def test_reconcile_after_crashes(env, trained):
    env.register(trained["v1"], policy={"check_latency": False})
    probe = models.dataset(4, "a", seed=5)[0]
    v1_out = env.pinned(probe, 1)

    # 1. Killed between writing version 2's folder and loading it.
    cand = candidate(env, trained["good"])
    env.registry.set_status(env.name, cand.version, VersionStatus.VALIDATING)
    write_version(env.repository, env.name, cand.version, trained["good"])
    actions = _restart(env)
    assert actions, "reconcile found nothing to repair"
    assert versions_on_disk(env.repository, env.name) == [1]
    assert env.registry.require_version(env.name, cand.version).status == VersionStatus.CANDIDATE
    assert env.registry.require_model(env.name).serving_version == 1
    assert env.triton.ready_versions(env.name) == {1}
    # The candidate event was never committed: its replay now publishes normally.
    env.deployer.handle_candidate(cand)
    assert env.registry.require_model(env.name).serving_version == cand.version
    assert env.triton.ready_versions(env.name) == {cand.version}

    # 2. Killed after Triton switched to version 3 but before the registry heard of it.
    third = candidate(env, trained["v1"])
    env.registry.set_status(env.name, third.version, VersionStatus.VALIDATING)
    remove_version(env.repository, env.name, cand.version)
    write_version(env.repository, env.name, third.version, trained["v1"])
    env.triton.load(env.name)
    assert env.triton.ready_versions(env.name) == {third.version}
    _restart(env)
    assert env.triton.ready_versions(env.name) == {cand.version}, "an unconfirmed version must not serve"
    assert env.registry.require_model(env.name).serving_version == cand.version
    assert env.registry.require_version(env.name, third.version).status == VersionStatus.CANDIDATE
    assert versions_on_disk(env.repository, env.name) == [cand.version]

    # 3. The registry says two versions serve and Triton lost the model (an explicit-mode restart).
    env.registry.set_status(env.name, 1, VersionStatus.SERVING, note="inconsistent on purpose")
    env.triton.unload(env.name)
    _restart(env)
    assert env.triton.ready_versions(env.name) == {cand.version}
    serving = [v.version for v in env.registry.list_versions(env.name) if v.status == VersionStatus.SERVING]
    assert serving == [cand.version]
    assert env.registry.require_version(env.name, 1).status == VersionStatus.RETIRED
    assert np.allclose(env.unpinned(probe), env.pinned(probe, cand.version))
    assert not np.allclose(env.unpinned(probe), v1_out)
