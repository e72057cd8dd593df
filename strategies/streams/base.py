"""A drift stream: a sequence of experiences, each drawn from one named concept.

Benchmarks train on the experiences in order and test on every concept after each update;
the demo draws live traffic of concept k with `sample`. Concepts may recur (A, B, C, A), so
that a strategy which forgot A pays for it when A comes back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

Sampler = Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
"""(concept index, n, rng) -> (x [n, *shape] in the stream's datatype, y int64 [n])."""


class Experience(NamedTuple):
    """One update's worth of data from one concept, plus that concept's test set."""

    concept: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class DriftStream:
    """Experiences in training order; `concepts` lists each distinct concept once."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    concepts: list[str]
    experiences: list[Experience]
    description: str = ""
    datatype: str = "FP32"
    """Triton datatype of the inputs (`services.common.tensors`): what a model of this stream
    is registered and exported with; INT64 streams hold token ids."""
    vocab_size: int | None = None
    """For token-id streams, one more than the largest id (what an embedding must hold)."""
    _sampler: Sampler | None = field(default=None, repr=False)

    def concept_index(self, experience_index: int) -> int:
        """Which concept experience `experience_index` comes from."""
        return self.concepts.index(self.experiences[experience_index].concept)

    def test_set(self, concept_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out samples of a concept (the same for every recurrence of it)."""
        name = self.concepts[concept_index]
        exp = next(e for e in self.experiences if e.concept == name)
        return exp.x_test, exp.y_test

    @property
    def change_points(self) -> list[int]:
        """Sample offsets, in the concatenated training stream, where the concept changes."""
        points, offset = [], 0
        for i, exp in enumerate(self.experiences):
            if i > 0 and exp.concept != self.experiences[i - 1].concept:
                points.append(offset)
            offset += len(exp.y_train)
        return points

    def sample(
        self, concept_index: int, n: int, rng: np.random.Generator | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`n` fresh labelled samples of concept `concept_index`, as numpy arrays."""
        if not 0 <= concept_index < len(self.concepts):
            raise IndexError(f"stream {self.name!r} has concepts 0..{len(self.concepts) - 1}")
        if self._sampler is None:
            raise NotImplementedError(f"stream {self.name!r} cannot draw new samples")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self._sampler(concept_index, int(n), gen)


def to_tensors(x: np.ndarray, y: np.ndarray, dtype: type[np.generic] = np.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)), torch.from_numpy(
        np.ascontiguousarray(y, dtype=np.int64)
    )


def held_out(x: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Which rows of `x` belong to the test side, decided by each row's content (a keyed hash).

    Splitting by content rather than by index means a row that occurs twice (a duplicate
    image, a generated text drawn again) is on one side only, so a test sample is never
    trained on; the `seed` keys the hash, so each stream seed has its own split.
    """
    key = (int(seed) % 2**64).to_bytes(8, "little")
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    cut = int(round(test_fraction * 2**32))
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=4, key=key).digest(), "little") < cut for r in rows),
        dtype=bool,
        count=len(rows),
    )
