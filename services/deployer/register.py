"""Registration of a model's first version: its architecture, weights and served artifact.

Before anything is written, `services.deployer.trainability` proves the model can be updated
(built from its factory, trained one step by its strategy, exported and compared), so a model
the trainer cannot rebuild is refused here in one line, not at its first update. Then: artifact
and weights stored by content, both Triton configs written, version 1 published atomically,
loaded, confirmed by a real inference, and only then marked serving.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


from services.common.artifacts import ArtifactStore
from services.common.tensors import InputError, InputSpec
from services.common.registry import WEIGHTS_SHA256, WEIGHTS_URI, ModelRecord, ModelRegistry, VersionRecord, VersionStatus
from services.deployer.policy import Policy
from services.deployer.publisher import switch
from services.deployer.trainability import RegistrationError, prove, prove_torchscript
from services.deployer.triton_ops import TritonOps
from strategies.architecture import Architecture

__all__ = ["RegistrationError", "register_model"]


def register_model(
    registry: ModelRegistry,
    store: ArtifactStore,
    triton: TritonOps,
    repository: Path,
    name: str,
    artifact: bytes | None,
    input_shape: list[int],
    classes: list[str],
    strategy: str = "replay",
    hyperparameters: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    actor: str = "cli",
    architecture: Architecture | None = None,
    weights: bytes | None = None,
    datatype: str = "FP32",
) -> VersionRecord:
    """Registers ``name`` with version 1 serving.

    Either a TorchScript ``artifact`` alone (updatable only when it is the built-in MLP), or an
    ``architecture`` with its ``weights`` (a ``state_dict``); with both an architecture and an
    artifact but no weights, the weights are read from the artifact's own parameters.
    """
    if registry.get_model(name) is not None:
        raise RegistrationError("registered_already", f"model {name!r} is registered already; publish new versions through the deployer")
    hp = dict(hyperparameters or {})
    try:
        spec = InputSpec(tuple(input_shape), datatype)
    except InputError as exc:
        raise RegistrationError(exc.reason, str(exc)) from None
    if architecture is None:
        if artifact is None:
            raise RegistrationError("no_model", "give a TorchScript artifact, or an architecture (--factory) with weights")
        if spec.integer:
            raise RegistrationError("no_architecture", f"a {spec.datatype} model needs its architecture (--factory): the built-in MLP takes floats")
        proven = prove_torchscript(artifact, spec, len(classes), strategy, hp)
    elif weights is None and artifact is not None:
        proven = prove_torchscript(artifact, spec, len(classes), strategy, hp, architecture)
    else:
        proven = prove(architecture, weights, spec, len(classes), strategy, hp, artifact=artifact)
    artifact = proven.artifact
    uri, digest = store.put(artifact)
    weights_uri, weights_sha = store.put(proven.weights, suffix=".weights.pt")
    now = int(time.time() * 1000)
    model = ModelRecord(
        name=name, input_shape=list(input_shape), classes=list(classes), strategy=strategy,
        hyperparameters=hp, policy=Policy.from_dict(policy).as_dict(), created_at_ms=now, updated_at_ms=now,
        architecture=proven.architecture.as_dict(), datatype=spec.datatype,
    )
    # Triton first, the registry last: a deployer reconciling meanwhile never sees a half-made model.
    probe = spec.synthetic(2)
    load_s = switch(triton, Path(repository), model, [1], 1, {1: artifact}, probe)
    model.serving_version = 1
    record = VersionRecord(model=name, version=1, status=VersionStatus.SERVING, artifact_uri=uri, artifact_sha256=digest,
                           strategy=strategy, metrics={"load_s": load_s}, created_at_ms=now, updated_at_ms=now,
                           report={WEIGHTS_URI: weights_uri, WEIGHTS_SHA256: weights_sha, "registration": proven.checks},
                           history=[{"status": "serving", "from": None, "actor": actor, "at_ms": now, "note": "registered"}])
    registry.put_version(record)
    registry.put_model(model)
    return record
