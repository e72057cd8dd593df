"""Fixtures of the model-factory tests: tiny data, one torch thread (a good neighbour on a
shared 2-core machine), hyperparameters that learn fast."""

from __future__ import annotations

import dataclasses

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


@pytest.fixture(scope="session")
def image_stream() -> DriftStream:
    """``digits-image``, few per update, average-pooled to 1×16×16: a ResNet step on a quarter
    of the pixels costs a quarter of the time, and exercises the same layers."""
    stream = get_stream("digits-image", seed=0, size=48)

    def pool(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 2)

    return dataclasses.replace(
        stream,
        input_shape=(1, 16, 16),
        experiences=[e._replace(x_train=pool(e.x_train), x_test=pool(e.x_test)) for e in stream.experiences],
    )


@pytest.fixture(scope="session")
def text_stream() -> DriftStream:
    """INT64 token ids, few per update."""
    return get_stream("text-topics", seed=0, size=48)
