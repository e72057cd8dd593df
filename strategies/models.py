"""The classifier the demo, the bench and the tests train: a small MLP that outputs logits.

Serving wraps it with a softmax at export time (`strategies.export`), so training code keeps
working with logits and `CrossEntropyLoss`.
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
