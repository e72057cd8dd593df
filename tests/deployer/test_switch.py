"""Zero-downtime switch: a client sending unpinned requests while two versions are published
sees no failure, and ends up answered by the newest version."""

from __future__ import annotations

import io

import numpy as np
import torch

from infra.local.process import wait_until
from services.common.registry import VersionStatus
from tests.deployer import models
from tests.deployer.helpers import candidate
from benchmarks.deployer.loadgen import LoadClient


def test_two_publications_under_load_fail_no_request(env, trained):
    env.register(trained["v1"], policy={"check_latency": False})
    client = LoadClient(env.settings.triton.http_url, env.name, models.DIM)
    client.start()
    try:
        wait_until(lambda: client.ok >= 20, 60, "client warmed up")
        x, y = models.dataset(600, "a", seed=9)
        third = models.script(models.train(x, y, seed=9, epochs=60))
        versions = []
        for artifact in (trained["good"], third):
            cand = candidate(env, artifact)
            env.deployer.handle_candidate(cand)
            assert env.registry.require_version(env.name, cand.version).status == VersionStatus.SERVING
            versions.append(cand.version)
            seen = client.ok
            wait_until(lambda: client.ok >= seen + 20, 60, "requests after the switch")
    finally:
        client.stop()
    assert client.failed == [], client.failed[:5]
    assert client.ok > 60
    probe = models.dataset(8, "a", seed=3)[0]
    expected = torch.jit.load(io.BytesIO(third))(torch.from_numpy(probe)).detach().numpy()
    assert np.allclose(env.unpinned(probe), expected, atol=1e-5)
    assert env.triton.ready_versions(env.name) == {versions[-1]}
    assert env.registry.require_version(env.name, versions[0]).status == VersionStatus.RETIRED
    assert [e.action for e in env.events if e.action == "deployed"] == ["deployed", "deployed"]
