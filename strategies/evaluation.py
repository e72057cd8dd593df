"""Accuracy of a model on a set of samples: the figure the trainer reports, the deployer's gate
compares and the strategies benchmark tabulates (one definition for all three)."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, device: torch.device) -> float | None:
    """Fraction of ``x`` classified as ``y`` (None on an empty set); leaves the model's mode as it was."""
    if len(y) == 0:
        return None
    x = torch.as_tensor(x)
    if x.is_floating_point():  # token ids stay integers
        x = x.float()
    y = torch.as_tensor(y, dtype=torch.int64)
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, len(y), 1024):
            logits = model(x[start : start + 1024].to(device))
            correct += int((logits.argmax(dim=1).cpu() == y[start : start + 1024]).sum())
    finally:
        model.train(was_training)
    return correct / len(y)
