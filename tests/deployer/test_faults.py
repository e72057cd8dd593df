"""Triton unreachable during a publication: retried, never decided on, and the registry never
says serving for a version Triton does not serve; once Triton answers, the replay publishes."""

from __future__ import annotations

import pytest

from infra.local.process import free_port
from services.common.registry import VersionStatus
from services.common.triton_errors import TritonUnavailable
from services.deployer.triton_ops import TritonOps
from tests.deployer.helpers import candidate


def test_publication_while_triton_is_unreachable(env, trained):
    env.register(trained["v1"], policy={"check_latency": False})
    assert env.registry.next_version(env.name) == 2  # registration took version 1 only
    real = env.deployer.triton
    env.deployer.triton = TritonOps(f"127.0.0.1:{free_port()}", retries=3, backoff_s=0.05,
                                    grpc_url=f"127.0.0.1:{free_port()}")
    cand = candidate(env, trained["good"])
    with pytest.raises(TritonUnavailable):
        env.deployer.handle_candidate(cand)
    assert env.registry.require_model(env.name).serving_version == 1
    assert env.registry.require_version(env.name, cand.version).status != VersionStatus.SERVING
    assert real.ready_versions(env.name) == {1}
    assert not [e for e in env.events if e.action in ("deployed", "rejected")]

    env.deployer.triton = real  # Triton is back: the uncommitted candidate is handled again
    env.deployer.handle_candidate(cand)
    assert env.registry.require_model(env.name).serving_version == cand.version
    assert real.ready_versions(env.name) == {cand.version}
    assert env.registry.require_version(env.name, cand.version).status == VersionStatus.SERVING
