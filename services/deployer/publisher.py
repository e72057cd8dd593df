"""Publication of versions into the Triton repository and their switch to serving.

The layout: the model folder holds exactly the version folder Triton must serve and a config
that never changes, ``version_policy: { latest { num_versions: 1 } }``. Publishing writes
folder N+1 atomically, removes the old folder, and calls ``load_model``: Triton loads the new
version while the old one keeps answering, then drops the old one, so clients that do not pin a
version never see a gap. Rollback is the same move backwards: the previous version's folder is
written again from the content-addressed artifact store (always loadable) and loaded.

Why one loaded version and not ``specific [previous, serving]``: Triton reloads every version of
a model whose config changes, and here also re-created the older version's backend process when
a newer one was added (seen in its log), doubling the cost of each switch; each loaded version
of the Python-based backend is also a ~240 MB process. A rollback costs one load instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from services.common.registry import ModelRecord
from services.common.triton_repo import ModelSpec, versions_on_disk, write_configs, write_version
from services.common.triton_errors import TritonLoadFailed
from services.deployer.triton_ops import TritonOps


def spec_of(model: ModelRecord) -> ModelSpec:
    return ModelSpec(model.name, tuple(model.input_shape), model.num_classes, datatype=model.input_spec.datatype)


KEEP_LOADED = 1
POLICY = f"{{ latest {{ num_versions: {KEEP_LOADED} }} }}"


def ensure_configs(repository: Path, model: ModelRecord) -> None:
    """Writes both configs unless they already say the same (a rewrite would look like a change)."""
    spec = spec_of(model)
    folder = Path(repository) / model.name
    local, production = folder / "configs" / "local.pbtxt", folder / "config.pbtxt"
    if (local.exists() and local.read_text() == spec.local_config(POLICY)
            and production.exists() and production.read_text() == spec.production_config(POLICY)):
        return
    write_configs(Path(repository), spec, POLICY)


def remove_version(repository: Path, model: str, version: int) -> None:
    """Takes a version folder out of the repository atomically (rename aside, then delete)."""
    folder = Path(repository) / model / str(version)
    if not folder.exists():
        return
    aside = folder.with_name(f".removed-{version}-{uuid.uuid4().hex[:8]}")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


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
    triton: TritonOps, repository: Path, model: ModelRecord, keep: list[int], target: int, data: dict[int, bytes],
    probe: np.ndarray,
) -> float:
    """Makes Triton serve exactly ``keep`` (``target``, the highest, answering unpinned requests)
    and proves ``target`` answers with a real inference. ``data`` has the artifacts of versions
    in ``keep`` whose folders may be missing.

    Returns the load time in seconds. Raises TritonUnavailable (retry later) or TritonLoadFailed.
    """
    keep = sorted(set(keep))
    if keep[-1] != target or len(keep) > KEEP_LOADED:
        raise ValueError(f"target {target} must be the highest of at most {KEEP_LOADED} versions {keep}")
    ensure_configs(repository, model)
    for v in keep:
        if v in data:
            stage(repository, model.name, v, data[v])
        elif not (Path(repository) / model.name / str(v) / "model.pt").exists():
            raise TritonLoadFailed(f"{model.name} v{v} has no folder and no artifact to write it from")
    # Higher folders must go before the load (they would win under ``latest``); lower ones only
    # after the target is confirmed, so a failed switch leaves the old version in place.
    for v in versions_on_disk(Path(repository), model.name):
        if v not in keep and v > target:
            remove_version(repository, model.name, v)
    seconds = triton.load(model.name)
    ready = triton.ready_versions(model.name)
    if target not in ready:
        raise TritonLoadFailed(f"{model.name} v{target} is not READY after load (ready: {sorted(ready)})")
    triton.confirm(model.name, target, probe, model.num_classes)
    for v in versions_on_disk(Path(repository), model.name):
        if v not in keep:
            remove_version(repository, model.name, v)
    return seconds
