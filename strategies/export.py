"""Export a trained classifier as TorchScript for Triton.

Triton's libtorch backend (and the project's Python-based local backend) feed the first
forward argument from ``INPUT__0`` and publish the first output as ``OUTPUT__0``. The exported
module returns class probabilities, not logits: the inference service and the deployer's
validation read confidences straight from ``OUTPUT__0``. A model that returns logits gets a
softmax appended; one declared to return probabilities is exported as it is.

The export takes the model's declared input datatype (`services.common.tensors`): FP32 and the
integer ids (INT64, INT32) go to the model unchanged; an FP16 model was trained in float32 (the
trainer's `InputSpec.compute_dtype`), so its export casts FP16 inputs to float32 first, keeping
the weights and the arithmetic the gate evaluated, and returns float32 probabilities like any
other (Triton's ``OUTPUT__0`` is always FP32).
"""

from __future__ import annotations

import copy
import io
import math
import warnings

import torch
from torch import nn

from services.common.tensors import is_integer, normalize_datatype, torch_dtype


class _Served(nn.Module):
    """What Triton runs: the model under ``model.`` (the names `architecture.match_state` finds),
    with a softmax for a logits model and a float32 cast for an FP16 input. Both flags are plain
    attributes, so tracing bakes the chosen path in."""

    def __init__(self, model: nn.Module, softmax: bool, cast_to_float32: bool) -> None:
        super().__init__()
        self.model = model
        self.softmax = softmax
        self.cast_to_float32 = cast_to_float32

    def forward(self, INPUT__0: torch.Tensor) -> torch.Tensor:  # noqa: N803 (Triton's name)
        x = INPUT__0.to(torch.float32) if self.cast_to_float32 else INPUT__0
        out = self.model(x)
        return torch.softmax(out, dim=1) if self.softmax else out


def example_input(input_shape: tuple[int, ...], datatype: str = "FP32", n: int = 2) -> torch.Tensor:
    """The batch an export is traced with: zeros, or alternating ids 0 and 1 for an integer
    input (ids every vocabulary has, so an embedding never sees an index out of range)."""
    dtype = torch_dtype(datatype)
    if is_integer(datatype):
        return (torch.arange(n * math.prod(input_shape)) % 2).reshape(n, *input_shape).to(dtype)
    return torch.zeros((n, *input_shape), dtype=dtype)


def export_torchscript(
    model: nn.Module, input_shape: tuple[int, ...], output: str = "logits", datatype: str = "FP32"
) -> bytes:
    """TorchScript bytes of `model` (followed by a softmax when it returns logits), traced on the CPU.

    `input_shape` is the shape of one sample, without the batch dimension (``(64,)`` for
    the digits MLP); `datatype` is the Triton datatype the served model takes (FP32, FP16,
    INT64, INT32). The model itself is left untouched (a CPU copy in eval mode is traced).
    """
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input_shape must be a non-empty per-sample shape, got {input_shape!r}")
    if output not in ("logits", "probabilities"):
        raise ValueError(f"output must be 'logits' or 'probabilities', got {output!r}")
    datatype = normalize_datatype(datatype)
    wrapped = _Served(copy.deepcopy(model).to("cpu"), softmax=output == "logits", cast_to_float32=datatype == "FP16").eval()
    # Batch of 2 so that tracing never specialises on a batch of one.
    example = example_input(shape, datatype)
    buffer = io.BytesIO()
    # TorchScript is what Triton's libtorch backend loads, deprecation notices or not.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(wrapped, example, check_trace=False)
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
