"""Model weights in and out of the artifact store, without ever unpickling arbitrary objects.

A version has a TorchScript artifact (what Triton serves: probabilities) and, when the trainer
made it, a ``state_dict`` artifact of the plain model (what the next update starts from), saved
with ``torch.save`` and read with ``torch.load(weights_only=True)``. A version registered from
TorchScript only (e.g. version 1) is rebuilt from the scripted module's own parameters.
"""

from __future__ import annotations

import io
import torch

from services.common.artifacts import ArtifactError, ArtifactStore
from services.common.registry import WEIGHTS_SHA256, WEIGHTS_URI, VersionRecord
from services.trainer import errors
from strategies.architecture import match_state



def dump_state(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def load_state(data: bytes) -> dict:
    """``torch.load`` restricted to tensors and plain containers (no code runs)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def raw_state(store: ArtifactStore, version: VersionRecord) -> dict[str, torch.Tensor]:
    """The parameters of ``version``: its weights artifact, else its TorchScript module's own."""
    try:
        uri = version.report.get(WEIGHTS_URI)
        if uri:
            return dict(load_state(store.get(uri, version.report.get(WEIGHTS_SHA256))))
        if not version.artifact_uri:
            raise errors.UpdateFailed(errors.ARTIFACT_INVALID, f"version {version.version} has no artifact")
        data = store.get(version.artifact_uri, version.artifact_sha256)
        return dict(torch.jit.load(io.BytesIO(data), map_location="cpu").state_dict())
    except ArtifactError as exc:
        raise errors.UpdateFailed(errors.ARTIFACT_INVALID, str(exc)) from exc
    except (RuntimeError, ValueError, EOFError, OSError) as exc:  # not TorchScript / not a weights file
        raise errors.UpdateFailed(errors.ARTIFACT_INVALID, f"version {version.version}: {exc}") from exc


def fit(model: torch.nn.Module, raw: dict[str, torch.Tensor]) -> None:
    """Loads ``raw`` into ``model``, finding the prefix a scripted wrapper put before the names."""
    matched = match_state(list(model.state_dict()), raw)
    if matched is None:
        raise errors.UpdateFailed(errors.ARTIFACT_INVALID, "the base version's parameters do not fit the model's layers")
    try:
        model.load_state_dict(matched)
    except RuntimeError as exc:  # shapes differ
        raise errors.UpdateFailed(errors.ARTIFACT_INVALID, f"base weights do not fit: {exc}") from exc


def hidden_width(state: dict[str, torch.Tensor]) -> int | None:
    """Width of the first layer in a weights dict (so the rebuilt MLP has the base's shape)."""
    for value in state.values():
        if value.ndim == 2:
            return int(value.shape[0])
    return None
