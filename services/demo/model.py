"""Version 1 of the demo model: the chosen architecture trained on the stream's first concept."""

from __future__ import annotations

import torch

from strategies.architecture import Architecture, for_training
from strategies.export import export_torchscript
from strategies.streams import DriftStream

DEMO_ARCHITECTURE = "strategies.models:make_mlp"
"""The demo's own MLP; any factory taking ``input_dim`` and ``num_classes`` can replace it."""


def demo_architecture(stream: DriftStream, factory: str = "", kwargs: dict | None = None) -> Architecture:
    """``factory(input_dim=…, num_classes=…, **kwargs)`` for the stream (the demo's MLP by default)."""
    input_dim = int(torch.tensor(stream.input_shape).prod())
    return Architecture(factory or DEMO_ARCHITECTURE, {"input_dim": input_dim, "num_classes": stream.num_classes, **(kwargs or {})})


def train_first_version(stream: DriftStream, epochs: int, seed: int, architecture: Architecture | None = None) -> tuple[bytes, float]:
    """TorchScript bytes of the model, and its accuracy on the first concept's test set."""
    torch.manual_seed(seed)
    first = stream.experiences[0]
    architecture = architecture or demo_architecture(stream)
    model = architecture.build()
    net = for_training(model, architecture.output)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = first.x_train.reshape(len(first.x_train), *stream.input_shape), first.y_train
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            idx = perm[start : start + 64]
            if len(idx) < 2:  # BatchNorm cannot train on one row
                continue
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        xt, yt = first.x_test.reshape(len(first.x_test), *stream.input_shape), first.y_test
        accuracy = float((net(xt).argmax(1) == yt).float().mean())
    return export_torchscript(model, tuple(stream.input_shape), architecture.output), accuracy
