"""Drift streams from River's synthetic generators, whose change points are known exactly.

Unlike the digits streams, these concepts disagree on labels (the same input has another
class under the next concept): real concept drift, where remembering the old concept can
cost accuracy on the new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from river.datasets import synth

from strategies.streams.base import DriftStream, Experience, to_tensors

# Known value ranges of Agrawal's features, to scale them into [0, ~1].
_AGRAWAL_SCALE = {
    "salary": 150_000.0,
    "commission": 75_000.0,
    "age": 80.0,
    "elevel": 4.0,
    "car": 20.0,
    "zipcode": 8.0,
    "hvalue": 1_350_000.0,
    "hyears": 30.0,
    "loan": 500_000.0,
}

Generator = Callable[[int, int], Iterator[tuple[dict, object]]]
"""(concept parameter, seed) -> River generator."""


def _sea(variant: int, seed: int) -> Iterator[tuple[dict, object]]:
    return iter(synth.SEA(variant=variant, noise=0.0, seed=seed))


def _agrawal(function: int, seed: int) -> Iterator[tuple[dict, object]]:
    return iter(synth.Agrawal(classification_function=function, seed=seed, balance_classes=True))


def _sea_row(x: dict) -> list[float]:
    return [x[0] / 10.0, x[1] / 10.0, x[2] / 10.0]


def _agrawal_row(x: dict) -> list[float]:
    return [float(x[k]) / s for k, s in _AGRAWAL_SCALE.items()]


def _take(
    gen: Iterator[tuple[dict, object]], n: int, row: Callable[[dict], list[float]]
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for _ in range(n):
        x, y = next(gen)
        xs.append(row(x))
        ys.append(int(y))
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.int64)


def river_stream(
    name: str,
    kind: str,
    sequence: list[int],
    seed: int = 0,
    train_per_experience: int = 1000,
    test_per_concept: int = 500,
    description: str = "",
) -> DriftStream:
    """A stream whose concept k is generator parameter `sequence[k]` (SEA variant or
    Agrawal classification function)."""
    make, row, dims = (_sea, _sea_row, 3) if kind == "sea" else (_agrawal, _agrawal_row, len(_AGRAWAL_SCALE))
    params = list(dict.fromkeys(sequence))
    concepts = [f"{kind}-{p}" for p in params]
    tests = {
        p: to_tensors(*_take(make(p, seed * 1000 + 500 + k), test_per_concept, row))
        for k, p in enumerate(params)
    }
    experiences = [
        Experience(
            f"{kind}-{p}",
            *to_tensors(*_take(make(p, seed * 1000 + i), train_per_experience, row)),
            *tests[p],
        )
        for i, p in enumerate(sequence)
    ]

    def sampler(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return _take(make(params[k], int(rng.integers(2**31))), n, row)

    return DriftStream(
        name=name,
        input_shape=(dims,),
        num_classes=2,
        concepts=concepts,
        experiences=experiences,
        description=description,
        _sampler=sampler,
    )
