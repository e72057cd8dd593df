"""Registration of a model's first version from a TorchScript file.

The same checks as the gate's static ones (TorchScript, shapes, finite probabilities) run
before anything is written, so a bad file never reaches Triton. Then: artifact stored by
content, both Triton configs written, version 1 published atomically, loaded, confirmed by a
real inference, and only then marked serving.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from services.common.artifacts import ArtifactStore
from services.common.errors import ModelCIError
from services.common.registry import ModelRecord, ModelRegistry, VersionRecord, VersionStatus
from services.deployer import checks
from services.deployer.checks import CandidateInvalid
from services.deployer.policy import Policy
from services.deployer.publisher import switch
from services.deployer.triton_ops import TritonOps


class RegistrationError(ModelCIError):
    reason = "registration"
    http_status = 400


def register_model(
    registry: ModelRegistry,
    store: ArtifactStore,
    triton: TritonOps,
    repository: Path,
    name: str,
    artifact: bytes,
    input_shape: list[int],
    classes: list[str],
    strategy: str = "replay",
    hyperparameters: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    actor: str = "cli",
) -> VersionRecord:
    if registry.get_model(name) is not None:
        raise RegistrationError(f"model {name!r} is registered already; publish new versions through the deployer")
    try:
        module, _ = checks.load_torchscript(artifact)
        checks.check_shapes(module, input_shape, len(classes))
        checks.check_outputs(module, np.random.default_rng(0).normal(size=(16, *input_shape)).astype(np.float32))
    except CandidateInvalid as exc:
        raise RegistrationError(f"{exc.check.reason}: {exc.check.values}") from exc
    uri, digest = store.put(artifact)
    now = int(time.time() * 1000)
    model = ModelRecord(
        name=name, input_shape=list(input_shape), classes=list(classes), strategy=strategy,
        hyperparameters=dict(hyperparameters or {}), policy=Policy.from_dict(policy).as_dict(), created_at_ms=now, updated_at_ms=now,
    )
    # Triton first, the registry last: a deployer reconciling meanwhile never sees a half-made model.
    probe = np.zeros((2, *input_shape), dtype=np.float32)
    load_s = switch(triton, Path(repository), model, [1], 1, {1: artifact}, probe)
    model.serving_version = 1
    record = VersionRecord(model=name, version=1, status=VersionStatus.SERVING, artifact_uri=uri, artifact_sha256=digest,
                           strategy=strategy, metrics={"load_s": load_s}, created_at_ms=now, updated_at_ms=now,
                           history=[{"status": "serving", "from": None, "actor": actor, "at_ms": now, "note": "registered"}])
    registry.put_version(record)
    registry.put_model(model)
    return record
