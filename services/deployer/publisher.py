"""Publication of versions into the Triton repository and their switch to serving.

The layout: the model folder's configs list exactly the versions Triton must keep loaded,
``version_policy: { specific { versions: [previous, serving] } }``. Unpinned requests go to the
highest loaded version, and a reload keeps the loaded versions answering until the new set is
ready, so clients never see a gap. The previous version stays loaded, which makes a rollback a
reload with ``[target]`` only. Configs live on disk (not only as load-time overrides) so a
restarted Triton, or a restarted deployer reconciling, sees the same truth.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from services.common.registry import ModelRecord
from services.common.triton_repo import ModelSpec, write_configs, write_version
from services.deployer.triton_ops import TritonLoadFailed, TritonOps


def spec_of(model: ModelRecord) -> ModelSpec:
    return ModelSpec(model.name, tuple(model.input_shape), model.num_classes)


def policy_text(versions: list[int]) -> str:
    listed = ", ".join(str(v) for v in sorted(set(versions)))
    return f"{{ specific {{ versions: [ {listed} ] }} }}"


def configured_versions(repository: Path, model: str) -> list[int]:
    """The versions the model's local config on disk asks Triton to load."""
    path = Path(repository) / model / "configs" / "local.pbtxt"
    if not path.exists():
        return []
    text = path.read_text()
    if "specific" not in text:
        return []
    inside = text.split("versions:", 1)[1].split("]", 1)[0].replace("[", "")
    return sorted(int(v) for v in inside.replace(",", " ").split() if v.strip().isdigit())


def stage(repository: Path, model: str, version: int, data: bytes) -> Path:
    """Writes ``N/model.pt`` atomically; a folder left by an interrupted run is reused if identical."""
    final = Path(repository) / model / str(version)
    if final.exists():
        existing = final / "model.pt"
        if existing.exists() and hashlib.sha256(existing.read_bytes()).digest() == hashlib.sha256(data).digest():
            return final
        raise TritonLoadFailed(f"{final} exists with different content")
    (Path(repository) / model).mkdir(parents=True, exist_ok=True)
    return write_version(Path(repository), model, version, data)


def switch(
    triton: TritonOps, repository: Path, model: ModelRecord, keep: list[int], target: int, probe: np.ndarray
) -> float:
    """Makes Triton load exactly ``keep`` (``target`` being the highest) and proves ``target`` answers.

    Returns the load time in seconds. Raises TritonUnavailable (retry later) or TritonLoadFailed.
    """
    if max(keep) != target:
        raise ValueError(f"target {target} must be the highest of {keep}: unpinned requests go to the highest")
    write_configs(Path(repository), spec_of(model), policy_text(keep))
    seconds = triton.load(model.name)
    ready = triton.ready_versions(model.name)
    if target not in ready:
        raise TritonLoadFailed(f"{model.name} v{target} is not READY after load (ready: {sorted(ready)})")
    triton.confirm(model.name, target, probe, model.num_classes)
    return seconds
