"""``digits-image``: scikit-learn's digits as 1×32×32 images, for convolutional models.

The 8×8 digits (no download) are upscaled bilinearly to 32×32, the size image models such as
`strategies.models.make_resnet` are built for; concepts are image-space shifts a camera or a
scanner could cause (rotation, blur, sensor noise), and the upright images come back at the end
so that forgetting them costs accuracy. Train and test images are split by the content of the
source digit (`held_out`), so no test image, under any concept, was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits

from strategies.streams.base import DriftStream, Experience, held_out, to_tensors

NUM_CLASSES = 10
SIDE = 32
INPUT_SHAPE = (1, SIDE, SIDE)
TEST_FRACTION = 0.3
BLUR_SIGMA = 2.0
"""In 32×32 pixels: half a pixel of the 8×8 original, enough to smear strokes together."""
NOISE_SIGMA = 0.35

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""(images [n, 32, 32] in [0, 1], rng) -> images of the concept, in [0, 1]."""


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8×8 originals (the content the split is decided on), their 32×32 upscales and labels."""
    data = load_digits()
    small = (data.images / 16.0).astype(np.float32)
    big = ndimage.zoom(small, (1, SIDE / 8, SIDE / 8), order=1, grid_mode=True, mode="grid-constant")
    return small, np.clip(big, 0.0, 1.0).astype(np.float32), data.target.astype(np.int64)


def _identity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x


def _rotate_90(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.rot90(x, k=1, axes=(1, 2))


def _blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=(0, BLUR_SIGMA, BLUR_SIGMA))


def _noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, NOISE_SIGMA, size=x.shape)


CONCEPTS: dict[str, Transform] = {
    "upright": _identity,
    "rotated-90": _rotate_90,
    "blurred": _blur,
    "noisy": _noise,
}
SEQUENCE = ["upright", "rotated-90", "blurred", "noisy", "upright"]


def _make(concept: str, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    _, big, y = _sources()
    x = np.clip(CONCEPTS[concept](big[idx], rng), 0.0, 1.0).astype(np.float32)
    return x.reshape(len(idx), *INPUT_SHAPE), y[idx]


def digits_image_stream(
    seed: int = 0,
    train_per_experience: int = 600,
    sequence: list[str] | None = None,
    name: str = "digits-image",
    description: str = "digits as 1x32x32 images: upright, rotated 90 degrees, blurred, noisy, upright again",
) -> DriftStream:
    """The stream over `sequence` (default: `SEQUENCE`; repeats make concepts recur)."""
    sequence = list(sequence or SEQUENCE)
    small, _, _ = _sources()
    test = held_out(small, TEST_FRACTION, seed)
    train_pool, test_pool = np.flatnonzero(~test), np.flatnonzero(test)
    concepts = list(dict.fromkeys(sequence))
    tests = {c: to_tensors(*_make(c, test_pool, np.random.default_rng([seed, 1, k]))) for k, c in enumerate(concepts)}
    experiences = []
    for i, cname in enumerate(sequence):
        rng = np.random.default_rng([seed, 2, i])
        idx = rng.choice(train_pool, size=train_per_experience, replace=train_per_experience > len(train_pool))
        experiences.append(Experience(cname, *to_tensors(*_make(cname, idx, rng)), *tests[cname]))

    def sampler(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.choice(len(small), size=n, replace=n > len(small))
        return _make(concepts[k], idx, rng)

    return DriftStream(
        name=name,
        input_shape=INPUT_SHAPE,
        num_classes=NUM_CLASSES,
        concepts=concepts,
        experiences=experiences,
        description=description,
        datatype="FP32",
        _sampler=sampler,
    )
