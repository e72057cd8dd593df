"""Tiny TorchScript classifiers and a synthetic drifting problem for the deployer's tests.

Two "concepts" over the same 8 features: the label is the argmax of a fixed linear map, and the
second concept uses another map, which is how drift (and a poisoned update) is simulated.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from strategies.architecture import Architecture

DIM, CLASSES = 8, 3
_MAPS = {
    "a": np.random.default_rng(11).normal(size=(DIM, CLASSES)),
    "b": np.random.default_rng(22).normal(size=(DIM, CLASSES)),
}


def dataset(n: int, concept: str = "a", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return x, (x @ _MAPS[concept]).argmax(axis=1).astype(np.int64)


class MLP(nn.Module):
    def __init__(self, dim: int = DIM, classes: int = CLASSES, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


ARCHITECTURE = Architecture("tests.deployer.models:MLP", output="probabilities")
"""How these tests register `MLP` (it returns probabilities itself)."""


class NaNModel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x[:, :CLASSES], dim=1) * float("nan")


class Slow(nn.Module):
    """`inner`'s answers after a chain of large matrix products that changes nothing in them: a
    candidate as accurate as `inner` and far slower to serve."""

    def __init__(self, inner: nn.Module, width: int = 1024, steps: int = 1000) -> None:
        super().__init__()
        self.inner, self.steps = inner, steps
        self.register_buffer("weight", torch.randn(width, width) / width**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ones(x.shape[0], self.weight.shape[0])
        for _ in range(self.steps):
            h = torch.tanh(h @ self.weight)
        return self.inner(x) + 0.0 * h.sum()


def train(x: np.ndarray, y: np.ndarray, epochs: int = 150, seed: int = 0, dim: int = DIM, classes: int = CLASSES) -> nn.Module:
    torch.manual_seed(seed)
    model = MLP(dim, classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(xt) + 1e-9), yt)
        loss.backward()
        opt.step()
    return model.eval()


def script(model: nn.Module, dim: int = DIM) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(model, torch.zeros(2, dim)), buf)
    return buf.getvalue()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
