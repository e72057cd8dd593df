"""Version 1 of the demo model: an MLP trained on the stream's first concept."""

from __future__ import annotations

import torch

from strategies.export import export_torchscript
from strategies.models import make_mlp
from strategies.streams import DriftStream


def train_first_version(stream: DriftStream, epochs: int, seed: int) -> tuple[bytes, float]:
    """TorchScript bytes of the model, and its accuracy on the first concept's test set."""
    torch.manual_seed(seed)
    first = stream.experiences[0]
    input_dim = int(torch.tensor(stream.input_shape).prod())
    model = make_mlp(input_dim, stream.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = first.x_train.reshape(len(first.x_train), -1), first.y_train
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            idx = perm[start : start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        xt, yt = first.x_test.reshape(len(first.x_test), -1), first.y_test
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    return export_torchscript(model, tuple(stream.input_shape)), accuracy
