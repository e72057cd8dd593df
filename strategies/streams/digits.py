"""Drift streams made from scikit-learn's 8x8 digits (shipped with the package, no download).

Each concept is a fixed transformation of the images (rotation, pixel permutation, noise,
intensity inversion) or a class-prior shift; the stream's seed only chooses which images go
into each experience and the noise drawn, so a concept means the same thing for every seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits

from strategies.streams.base import DriftStream, Experience, to_tensors

NUM_CLASSES = 10
INPUT_SHAPE = (64,)
TEST_FRACTION = 0.3
_CONCEPT_SEED = 20_240_601  # fixes the permutation concept for every stream seed


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def _images(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, 8, 8)


def _rotate(degrees: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def transform(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if degrees % 90 == 0:
            out = np.rot90(_images(x), k=int(degrees // 90) % 4, axes=(1, 2))
        else:
            out = ndimage.rotate(_images(x), degrees, axes=(1, 2), reshape=False, order=1)
        return np.clip(out, 0.0, 1.0).reshape(len(x), -1)

    return transform


def _permute(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    perm = np.random.default_rng(_CONCEPT_SEED).permutation(x.shape[1])
    return x[:, perm]


def _noise(sigma: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def transform(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(x + rng.normal(0.0, sigma, size=x.shape), 0.0, 1.0)

    return transform


def _invert(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 1.0 - x


def _identity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x


@dataclass(frozen=True)
class Concept:
    name: str
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    class_weights: tuple[float, ...] | None = None
    """Relative frequency of each class (class-prior shift); None: as in the data."""


CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in [
        Concept("upright", _identity),
        Concept("rotated-90", _rotate(90)),
        Concept("rotated-30", _rotate(30)),
        Concept("rotated-60", _rotate(60)),
        Concept("permuted", _permute),
        Concept("inverted", _invert),
        Concept("noise-0.2", _noise(0.2)),
        Concept("noise-0.4", _noise(0.4)),
        Concept("low-digits", _identity, (4, 4, 4, 4, 4, 1, 1, 1, 1, 1)),
        Concept("high-digits", _identity, (1, 1, 1, 1, 1, 4, 4, 4, 4, 4)),
    ]
}


def _split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test pools (test images are never trained on)."""
    x, _ = _digits()
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * TEST_FRACTION))
    return order[n_test:], order[:n_test]


def _draw(pool: np.ndarray, n: int, concept: Concept, rng: np.random.Generator) -> np.ndarray:
    """`n` indices from `pool`, without replacement when the pool allows it."""
    _, y = _digits()
    p = None
    if concept.class_weights is not None:
        w = np.asarray(concept.class_weights, dtype=np.float64)[y[pool]]
        p = w / w.sum()
    return rng.choice(pool, size=n, replace=n > len(pool), p=p)


def _make(concept: Concept, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = _digits()
    return concept.transform(x[idx], rng).astype(np.float32), y[idx]


def digits_stream(
    name: str,
    sequence: list[str],
    seed: int = 0,
    train_per_experience: int = 600,
    description: str = "",
) -> DriftStream:
    """A stream over the concepts named in `sequence` (repeats make concepts recur)."""
    train_pool, test_pool = _split(seed)
    concepts = list(dict.fromkeys(sequence))
    tests = {}
    for k, cname in enumerate(concepts):
        concept = CONCEPTS[cname]
        rng = np.random.default_rng([seed, 1, k])
        idx = test_pool if concept.class_weights is None else _draw(test_pool, len(test_pool), concept, rng)
        tests[cname] = to_tensors(*_make(concept, idx, rng))
    experiences = []
    for i, cname in enumerate(sequence):
        concept = CONCEPTS[cname]
        rng = np.random.default_rng([seed, 2, i])
        idx = _draw(train_pool, train_per_experience, concept, rng)
        x_train, y_train = to_tensors(*_make(concept, idx, rng))
        experiences.append(Experience(cname, x_train, y_train, *tests[cname]))

    def sampler(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        concept = CONCEPTS[concepts[k]]
        all_idx = np.arange(len(_digits()[0]))
        return _make(concept, _draw(all_idx, n, concept, rng), rng)

    return DriftStream(
        name=name,
        input_shape=INPUT_SHAPE,
        num_classes=NUM_CLASSES,
        concepts=concepts,
        experiences=experiences,
        description=description,
        _sampler=sampler,
    )
