"""Drift streams: deterministic per seed, shaped as the bench and the demo expect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strategies import UnknownStream
from strategies.streams import DEFAULT_STREAM, available_streams, get_stream


def _same(a, b) -> bool:
    return all(
        ea.concept == eb.concept and all(torch.equal(ta, tb) for ta, tb in zip(ea[1:], eb[1:]))
        for ea, eb in zip(a.experiences, b.experiences)
    )


@pytest.mark.parametrize("name", available_streams())
def test_stream_is_deterministic_per_seed_and_well_formed(name):
    small = 40
    a, b, other = get_stream(name, 3, size=small), get_stream(name, 3, size=small), get_stream(name, 4, size=small)
    assert _same(a, b)
    assert not _same(a, other)
    assert len(a.experiences) >= 3 and len(a.concepts) >= 2
    for exp in a.experiences:
        assert exp.concept in a.concepts
        assert exp.x_train.dtype == torch.float32 and exp.y_train.dtype == torch.int64
        assert tuple(exp.x_train.shape) == (small, *a.input_shape)
        assert tuple(exp.x_test.shape[1:]) == a.input_shape and len(exp.x_test) == len(exp.y_test)
        assert int(exp.y_train.max()) < a.num_classes and torch.isfinite(exp.x_train).all()
    assert a.change_points == [small * i for i in range(1, len(a.experiences))]


def test_default_stream_recurs_to_its_first_concept():
    stream = get_stream(DEFAULT_STREAM)
    order = [e.concept for e in stream.experiences]
    assert order[0] == order[-1] and len(set(order)) == 3
    # The recurring concept is tested on the same held-out set both times.
    assert stream.experiences[0].x_test is stream.experiences[-1].x_test
    # ... but trains on a fresh draw of images.
    assert not torch.equal(stream.experiences[0].x_train, stream.experiences[-1].x_train)


def test_digits_test_images_are_never_trained_on():
    stream = get_stream("recurring", seed=1)
    upright_test = {tuple(row.tolist()) for row in stream.test_set(0)[0]}
    upright_train = {tuple(row.tolist()) for e in stream.experiences if e.concept == "upright" for row in e.x_train}
    assert not upright_test & upright_train


@pytest.mark.parametrize("name", ["recurring", "sea"])
def test_sample_draws_concept_k_reproducibly(name):
    stream = get_stream(name)
    x1, y1 = stream.sample(1, 25, np.random.default_rng(7))
    x2, y2 = stream.sample(1, 25, np.random.default_rng(7))
    assert x1.shape == (25, *stream.input_shape) and x1.dtype == np.float32 and y1.dtype == np.int64
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    with pytest.raises(IndexError):
        stream.sample(len(stream.concepts), 1)


def test_concepts_differ_in_what_a_model_must_learn():
    # Rotated digits are a different input distribution from upright ones, sampled alike.
    stream = get_stream("recurring")
    upright, _ = stream.sample(0, 200, 0)
    rotated, _ = stream.sample(1, 200, 0)
    assert np.abs(upright.mean(0) - rotated.mean(0)).max() > 0.1


def test_unknown_stream():
    with pytest.raises(UnknownStream) as caught:
        get_stream("no-such-stream")
    assert caught.value.reason == "unknown_stream"
