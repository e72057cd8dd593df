"""Architectures a team might register, good and bad, importable by the trainer as factories."""

from __future__ import annotations

import torch
from torch import nn


def one_hidden_mlp(input_dim: int = 8, num_classes: int = 3) -> nn.Module:
    """A layout other than the built-in MLP's (one hidden layer)."""
    return nn.Sequential(nn.Linear(input_dim, 16), nn.Tanh(), nn.Linear(16, num_classes))


class SoftmaxHead(nn.Module):
    """Returns probabilities itself (declared with output=probabilities)."""

    def __init__(self, input_dim: int = 8, num_classes: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


class NoParameters(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x[:, :3], dim=1)


class Frozen(nn.Module):
    """Has parameters, but its forward never lets a gradient reach them."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.linear(x)


class DataDependent(nn.Module):
    """Branches on its input: tracing records the branch of the trace's own batch, so the export
    differs from the module on other batches."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        if x.shape[0] == 2:
            return out
        return -out


def not_a_module() -> object:
    return object()
