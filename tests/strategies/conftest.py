"""Fixtures of the model-factory tests: tiny data, one torch thread (a good neighbour on a
shared 2-core machine), hyperparameters that learn fast."""

from __future__ import annotations

import pytest
import torch

from strategies.streams import DriftStream, get_stream

FAST = {"epochs": 3, "lr": 0.01, "batch_size": 32}
"""Few epochs and a large step: enough to beat chance on 150 digits."""


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_stream() -> DriftStream:
    """The recurring digits stream with 150 training samples per update."""
    return get_stream("recurring", seed=0, size=150)
