"""Version 1 of the demo model: the chosen architecture trained on the stream's first concept."""

from __future__ import annotations

import inspect

import torch

from strategies.architecture import Architecture, for_training, load_factory
from strategies.export import export_torchscript
from strategies.streams import DriftStream

DEMO_ARCHITECTURE = "strategies.models:make_mlp"
"""The demo's own MLP; any factory taking ``input_dim`` and ``num_classes`` can replace it."""


def stream_datatype(stream: DriftStream) -> str:
    """The Triton datatype of the stream's inputs (FP32 for streams that do not say)."""
    return str(getattr(stream, "datatype", "FP32"))


def demo_architecture(stream: DriftStream, factory: str = "", kwargs: dict | None = None) -> Architecture:
    """``factory(num_classes=…, input_dim=… or input_shape=…, **kwargs)`` for the stream (the
    demo's MLP by default): a factory that takes ``input_shape`` (a CNN, a text model) gets the
    stream's shape, any other the flat size."""
    name = factory or DEMO_ARCHITECTURE
    params = inspect.signature(load_factory(name)).parameters
    if "input_shape" in params:
        size: dict = {"input_shape": [int(d) for d in stream.input_shape]}
    else:
        size = {"input_dim": int(torch.tensor(stream.input_shape).prod())}
    return Architecture(name, {**size, "num_classes": stream.num_classes, **(kwargs or {})})


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
    return export_torchscript(model, tuple(stream.input_shape), architecture.output, datatype=stream_datatype(stream)), accuracy
