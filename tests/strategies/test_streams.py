"""Drift streams: deterministic per seed, shaped as the bench and the demo expect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.common.tensors import NUMPY_DTYPES, torch_dtype
from strategies import UnknownStream, get_strategy
from strategies.evaluation import accuracy
from strategies.models import make_mlp, make_text
from strategies.streams import DEFAULT_STREAM, available_streams, get_stream

NEW_FAMILIES = ["digits-image", "text-topics"]


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
        assert exp.x_train.dtype == torch_dtype(a.datatype) == exp.x_test.dtype and exp.y_train.dtype == torch.int64
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


@pytest.mark.parametrize("name", ["recurring", "sea", *NEW_FAMILIES])
def test_sample_draws_concept_k_reproducibly(name):
    stream = get_stream(name, size=40)
    x1, y1 = stream.sample(1, 25, np.random.default_rng(7))
    x2, y2 = stream.sample(1, 25, np.random.default_rng(7))
    assert x1.shape == (25, *stream.input_shape) and x1.dtype == NUMPY_DTYPES[stream.datatype] and y1.dtype == np.int64
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


# -- the image and text streams ---------------------------------------------------------


def test_image_and_text_streams_declare_what_their_model_takes():
    image, text = get_stream("digits-image", size=40), get_stream("text-topics", size=40)
    assert (image.input_shape, image.datatype, image.num_classes) == ((1, 32, 32), "FP32", 10)
    assert (text.input_shape, text.datatype, text.num_classes, text.vocab_size) == ((32,), "INT64", 4, 1000)
    assert get_stream("recurring", size=40).datatype == "FP32"  # the default for streams that do not say
    x = image.experiences[0].x_train
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    ids = torch.cat([e.x_train for e in text.experiences] + [text.test_set(k)[0] for k in range(len(text.concepts))])
    assert int(ids.min()) == 0 and int(ids.max()) < text.vocab_size
    # Texts are padded at the end, and every text has words.
    words = ids != 0
    assert (words.sum(1) >= 8).all()
    assert torch.equal(words, words.cummin(dim=1).values), "padding only after the last word"


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_first_concept_recurs_with_its_test_set_and_fresh_training_data(name):
    stream = get_stream(name, size=60)
    order = [e.concept for e in stream.experiences]
    assert order[0] == order[-1] and len(set(order)) == len(stream.concepts) >= 3
    assert stream.experiences[0].x_test is stream.experiences[-1].x_test
    assert not torch.equal(stream.experiences[0].x_train, stream.experiences[-1].x_train)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.reshape(len(x), -1)}


@pytest.mark.parametrize("name", NEW_FAMILIES)
def test_no_test_sample_is_ever_trained_on(name):
    # By content, over every concept: a test row is in no experience's training data.
    stream = get_stream(name, seed=2)
    trained = set().union(*(_rows(e.x_train) for e in stream.experiences))
    for k in range(len(stream.concepts)):
        x_test, _ = stream.test_set(k)
        assert len(_rows(x_test)) > 100
        assert not _rows(x_test) & trained, stream.concepts[k]


def _fit(stream, model: torch.nn.Module, epochs: int):
    torch.manual_seed(0)
    strategy = get_strategy("naive")(model, {"epochs": epochs, "lr": 0.01, "batch_size": 32})
    first = stream.experiences[0]
    strategy.train(first.x_train, first.y_train)
    return [accuracy(strategy.model, *stream.test_set(k), strategy.device) for k in range(len(stream.concepts))]


def test_text_topics_is_learnable_and_its_second_concept_defeats_a_model_of_the_first():
    stream = get_stream("text-topics", seed=0, size=400)
    acc = _fit(stream, make_text(stream.num_classes, stream.input_shape, vocab_size=stream.vocab_size), epochs=5)
    assert acc[0] > 0.9, f"a bag of embeddings reached {acc[0]:.2f} on the first vocabulary"
    assert acc[1] < acc[0] - 0.4, f"the synonyms leave a first-vocabulary model at {acc[1]:.2f}"


def test_digits_image_is_learnable_and_rotation_defeats_a_model_of_upright_digits():
    stream = get_stream("digits-image", seed=0, size=400)
    acc = _fit(stream, make_mlp(32 * 32, stream.num_classes, hidden=32), epochs=8)
    assert acc[0] > 0.8, f"upright accuracy {acc[0]:.2f}"
    assert acc[1] < acc[0] - 0.4, f"rotated digits leave an upright model at {acc[1]:.2f}"
