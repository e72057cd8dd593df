"""Checks that run the candidate's TorchScript on the deployer's CPU: cheap, and no Triton needed.

Each check answers with a `Check` (name, passed, reason, values) so the report records every
decision and its evidence. A failing early check (the artifact cannot even be read) makes the
later ones meaningless: the gate marks them skipped instead of crashing on them.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from services.common.artifacts import ArtifactError, ArtifactStore, sha256_of
from services.common.tensors import InputSpec


@dataclass
class Check:
    name: str
    passed: bool
    reason: str | None = None
    skipped: bool = False
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CandidateInvalid(Exception):
    """Raised inside the gate when a check leaves nothing further to check."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.reason)
        self.check = check


def fetch_artifact(store: ArtifactStore, uri: str | None, sha256: str | None) -> tuple[bytes, Check]:
    """Reads the artifact and verifies its content hash against the candidate's claim."""
    if not uri:
        raise CandidateInvalid(Check("artifact", False, "artifact_missing", values={"uri": uri}))
    try:
        data = store.get(uri)
    except ArtifactError as exc:
        raise CandidateInvalid(Check("artifact", False, "artifact_missing", values={"uri": uri, "error": str(exc)}))
    actual = sha256_of(data)
    values = {"uri": uri, "sha256": actual, "expected_sha256": sha256, "bytes": len(data)}
    if not sha256 or actual != sha256:
        raise CandidateInvalid(Check("artifact_hash", False, "hash_mismatch", values=values))
    return data, Check("artifact_hash", True, values=values)


def load_torchscript(data: bytes) -> tuple[torch.jit.ScriptModule, Check]:
    """TorchScript archives are zip files: not a zip means corrupt, a zip that fails to load is
    something else (a pickled state dict, an eager module saved with torch.save)."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CandidateInvalid(Check("torchscript", False, "artifact_corrupt", values={"detail": "not a zip archive"}))
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError and friends with no common base
        raise CandidateInvalid(
            Check("torchscript", False, "not_torchscript", values={"detail": f"{type(exc).__name__}: {str(exc)[:300]}"})
        )
    module.eval()
    return module, Check("torchscript", True)


def run(module: torch.jit.ScriptModule, inputs: np.ndarray) -> np.ndarray:
    """The module's outputs for a batch given in the model's own datatype."""
    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(inputs))).float().numpy()


def check_shapes(module: torch.jit.ScriptModule, spec: InputSpec, num_classes: int) -> Check:
    input_shape = list(spec.shape)
    probe = np.zeros((2, *input_shape), dtype=spec.numpy_dtype)
    try:
        out = run(module, probe)
    except Exception as exc:
        raise CandidateInvalid(
            Check("shapes", False, "wrong_input_shape", values={"input_shape": input_shape, "detail": str(exc)[:300]})
        )
    values = {"input_shape": input_shape, "output_shape": list(out.shape), "expected_output": [2, num_classes]}
    if tuple(out.shape) != (2, num_classes):
        raise CandidateInvalid(Check("shapes", False, "wrong_output_shape", values=values))
    return Check("shapes", True, values=values)


def check_outputs(module: torch.jit.ScriptModule, features: np.ndarray, atol: float = 1e-3) -> Check:
    """Outputs must be finite class probabilities (rows in [0, 1] summing to 1)."""
    out = run(module, features)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).any(axis=1).sum())
        raise CandidateInvalid(Check("outputs", False, "non_finite_output", values={"rows_with_nan_or_inf": bad}))
    sums = out.sum(axis=1)
    worst = float(np.abs(sums - 1.0).max()) if len(sums) else 0.0
    values = {"rows": int(len(out)), "max_sum_error": worst, "min": float(out.min()), "max": float(out.max())}
    if worst > atol or out.min() < -atol or out.max() > 1 + atol:
        raise CandidateInvalid(Check("outputs", False, "not_probabilities", values=values))
    return Check("outputs", True, values=values)


def correct(module: torch.jit.ScriptModule, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample, whether the module's top class is the label."""
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    return run(module, features).argmax(axis=1) == labels


def accuracy(module: torch.jit.ScriptModule, features: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    preds = run(module, features).argmax(axis=1)
    return float((preds == labels).mean())
