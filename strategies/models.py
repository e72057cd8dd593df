"""Classifiers the project ships: the demo's MLP, and example architectures of other families.

All output logits; serving wraps them with a softmax at export time (`strategies.export`), so
training code keeps working with logits and `CrossEntropyLoss`. Each is a factory a model can be
registered with (``--factory strategies.models:make_tabular``), like a team's own.
"""

from __future__ import annotations

import torch
from torch import nn


def make_mlp(input_dim: int, num_classes: int, hidden: int = 64) -> nn.Module:
    """Two hidden ReLU layers of `hidden` units; inputs of any shape are flattened first.

    >>> m = make_mlp(64, 10)
    >>> tuple(m(torch.zeros(3, 64)).shape)
    (3, 10)
    """
    if input_dim < 1 or num_classes < 2 or hidden < 1:
        raise ValueError("make_mlp needs input_dim >= 1, num_classes >= 2 and hidden >= 1")
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(input_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def make_tabular(input_dim: int, num_classes: int, hidden: int = 48, dropout: float = 0.2) -> nn.Module:
    """A tabular network whose train and eval behaviour differ: BatchNorm and Dropout.

    >>> m = make_tabular(64, 10).eval()
    >>> tuple(m(torch.zeros(3, 64)).shape)
    (3, 10)
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(input_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


class SmallCNN(nn.Module):
    """A convolutional image classifier (C×H×W inputs) with BatchNorm, sized for a CPU."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def make_cnn(in_channels: int = 1, num_classes: int = 10, width: int = 16) -> nn.Module:
    """`SmallCNN`: for images such as the 1×8×8 scikit-learn digits."""
    return SmallCNN(in_channels, num_classes, width)
