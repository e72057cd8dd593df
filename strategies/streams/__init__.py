"""Named drift streams for benchmarks and the demo (no downloads: sklearn, River and synthetic data).

Each stream says what its inputs are (`DriftStream.input_shape`, `DriftStream.datatype`): flat
float vectors (the digits and River streams), 1×32×32 images (``digits-image``), or INT64 token
ids (``text-topics``), so that a benchmark builds and exports the right model.

>>> stream = get_stream("recurring", seed=0)
>>> [e.concept for e in stream.experiences]
['upright', 'rotated-90', 'permuted', 'upright']
"""

from __future__ import annotations

from collections.abc import Callable

from strategies.errors import UnknownStream
from strategies.streams.base import DriftStream, Experience
from strategies.streams.digits import digits_stream
from strategies.streams.digits_image import digits_image_stream
from strategies.streams.river_streams import river_stream
from strategies.streams.text_topics import text_topics_stream

DEFAULT_STREAM = "recurring"

_STREAMS: dict[str, Callable[..., DriftStream]] = {
    "recurring": lambda seed, **kw: digits_stream(
        "recurring",
        ["upright", "rotated-90", "permuted", "upright"],
        seed,
        **kw,
        description="digits: upright, rotated 90 degrees, pixels permuted, upright again",
    ),
    "digits-rotations": lambda seed, **kw: digits_stream(
        "digits-rotations",
        ["upright", "rotated-30", "rotated-60", "rotated-90"],
        seed,
        **kw,
        description="digits rotated a little more at each update (gradual covariate drift)",
    ),
    "digits-noise": lambda seed, **kw: digits_stream(
        "digits-noise",
        ["upright", "noise-0.2", "noise-0.4", "inverted"],
        seed,
        **kw,
        description="digits under growing pixel noise, then inverted intensities",
    ),
    "digits-prior": lambda seed, **kw: digits_stream(
        "digits-prior",
        ["low-digits", "high-digits", "low-digits"],
        seed,
        **kw,
        description="class-prior shift: mostly 0-4, then mostly 5-9, then back",
    ),
    "sea": lambda seed, **kw: river_stream(
        "sea",
        "sea",
        [0, 1, 2, 3, 0],
        seed,
        **kw,
        description="River SEA: four label thresholds, then the first again (sudden concept drift)",
    ),
    "agrawal": lambda seed, **kw: river_stream(
        "agrawal",
        "agrawal",
        [0, 2, 4, 0],
        seed,
        **kw,
        description="River Agrawal: loan-approval functions 0, 2, 4, then 0 again",
    ),
    "digits-image": lambda seed, **kw: digits_image_stream(seed, **kw),
    "text-topics": lambda seed, **kw: text_topics_stream(seed, **kw),
}


def available_streams() -> list[str]:
    """Names accepted by `get_stream`."""
    return list(_STREAMS)


def get_stream(name: str, seed: int = 0, size: int | None = None) -> DriftStream:
    """The named stream, or a researcher's own: ``package.module:function`` called as
    ``function(seed)`` (``function(seed, train_per_experience=size)`` with `size`), returning a
    `DriftStream`. The same `seed` always gives the same tensors.

    `size` overrides the training samples per experience (small values for quick tests).
    """
    build = _STREAMS.get(name)
    if build is None and ":" in name:
        import importlib

        module, _, attr = name.partition(":")
        try:
            build = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownStream(f"cannot import stream {name!r}: {exc}") from None
    if build is None:
        raise UnknownStream(f"unknown stream {name!r}; available: {', '.join(_STREAMS)}, or 'package.module:function'")
    stream = build(seed) if size is None else build(seed, train_per_experience=size)
    if not isinstance(stream, DriftStream):
        raise UnknownStream(f"stream {name!r} returned {type(stream).__name__}, not a DriftStream")
    return stream


__all__ = ["DEFAULT_STREAM", "DriftStream", "Experience", "available_streams", "get_stream"]
