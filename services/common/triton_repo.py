"""The Triton model repository: one layout, two engines.

A model folder holds ``config.pbtxt`` (``platform: "pytorch_libtorch"``, for the NGC server in
production), ``configs/local.pbtxt`` (the Python-based TorchScript backend of the
pip-installed server, chosen with ``--model-config-name=local``) and one folder per version with
``model.pt`` (TorchScript, tensors ``INPUT__0`` / ``OUTPUT__0``). A version is published by
writing it into a temporary folder beside its final place and renaming it there, so Triton
never sees a half-written version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCAL_BACKEND = "modelci_torchscript"


@dataclass(frozen=True)
class ModelSpec:
    """What Triton must know about a model's tensors."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    max_batch_size: int = 256
    datatype: str = "FP32"
    """The input's Triton datatype (`services.common.tensors`); outputs are always FP32."""

    def _body(self, engine_line: str, version_policy: str) -> str:
        dims = ", ".join(str(d) for d in self.input_shape)
        return (
            f'name: "{self.name}"\n'
            f"{engine_line}\n"
            f"max_batch_size: {self.max_batch_size}\n"
            f'input [ {{ name: "INPUT__0" data_type: TYPE_{self.datatype} dims: [ {dims} ] }} ]\n'
            f'output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ {self.num_classes} ] }} ]\n'
            f"version_policy: {version_policy}\n"
            "dynamic_batching { max_queue_delay_microseconds: 200 }\n"
            "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
        )

    def production_config(self, version_policy: str = "{ latest { num_versions: 1 } }") -> str:
        return self._body('platform: "pytorch_libtorch"', version_policy)

    def local_config(self, version_policy: str = "{ latest { num_versions: 1 } }") -> str:
        return self._body(f'backend: "{LOCAL_BACKEND}"', version_policy)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def write_configs(repository: Path, spec: ModelSpec, version_policy: str = "{ latest { num_versions: 1 } }") -> Path:
    """Writes both configs of a model; returns the model folder."""
    model_dir = Path(repository) / spec.name
    _atomic_write(model_dir / "config.pbtxt", spec.production_config(version_policy))
    _atomic_write(model_dir / "configs" / "local.pbtxt", spec.local_config(version_policy))
    return model_dir


def write_version(repository: Path, model: str, version: int, artifact: bytes | Path) -> Path:
    """Publishes ``model.pt`` as version ``version``: temporary folder, then rename into place."""
    model_dir = Path(repository) / model
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists already")
    staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.tmp-"))
    try:
        target = staging / "model.pt"
        if isinstance(artifact, (bytes, bytearray)):
            target.write_bytes(artifact)
        else:
            shutil.copyfile(artifact, target)
        with open(target, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def versions_on_disk(repository: Path, model: str) -> list[int]:
    model_dir = Path(repository) / model
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
