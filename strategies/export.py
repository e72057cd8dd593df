"""Export a trained classifier as TorchScript for Triton.

Triton's libtorch backend (and the project's Python-based local backend) feed the first
forward argument from ``INPUT__0`` and publish the first output as ``OUTPUT__0``. The exported
module returns class probabilities, not logits: the inference service and the deployer's
validation read confidences straight from ``OUTPUT__0``. A model that returns logits gets a
softmax appended; one declared to return probabilities is exported as it is.
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import nn


class _Probabilities(nn.Module):
    """Wraps a logits model so that serving gets softmax probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, INPUT__0: torch.Tensor) -> torch.Tensor:  # noqa: N803 (Triton's name)
        return torch.softmax(self.model(INPUT__0), dim=1)


class _AsIs(nn.Module):
    """Wraps a model that returns probabilities already (same parameter names as `_Probabilities`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, INPUT__0: torch.Tensor) -> torch.Tensor:  # noqa: N803 (Triton's name)
        return self.model(INPUT__0)


def export_torchscript(model: nn.Module, input_shape: tuple[int, ...], output: str = "logits") -> bytes:
    """TorchScript bytes of `model` (followed by a softmax when it returns logits), traced on the CPU.

    `input_shape` is the shape of one sample, without the batch dimension (``(64,)`` for
    the digits MLP). The model itself is left untouched (a CPU copy in eval mode is traced).
    """
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input_shape must be a non-empty per-sample shape, got {input_shape!r}")
    if output not in ("logits", "probabilities"):
        raise ValueError(f"output must be 'logits' or 'probabilities', got {output!r}")
    wrapper = _Probabilities if output == "logits" else _AsIs
    wrapped = wrapper(copy.deepcopy(model).to("cpu")).eval()
    # Batch of 2 so that tracing never specialises on a batch of one.
    example = torch.zeros((2, *shape), dtype=torch.float32)
    buffer = io.BytesIO()
    # TorchScript is what Triton's libtorch backend loads, deprecation notices or not.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(wrapped, example, check_trace=False)
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
