"""A model's declared input (shape and datatype) and how its tensors travel in events.

Floating-point inputs (FP32, FP16) travel in the events' ``features`` (Avro ``float``: FP16
values are exact in it), integer inputs (INT64, INT32: token ids padded to a declared length,
categorical codes) in ``int_features`` (Avro ``long``). One place converts between numpy
tensors and those two lists, so the client, the inference service, the trainer and the gate
agree on it (docs/models.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NUMPY_DTYPES: dict[str, type[np.generic]] = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32}
"""The Triton datatypes a registered classifier may take."""

INTEGER_DATATYPES = frozenset({"INT64", "INT32"})


def content_buckets(rows: Any) -> np.ndarray:
    """Each row's place in [0, 1), from a hash of its values alone.

    Floats hash as float32 and integers as int64 whatever array or list they come in, so the
    trainer (numpy batches from Kafka) and the deployer (JSON lists from Redis) place one input
    at the same point. "Held out" means a bucket below the model's ``holdout_fraction``: every
    copy of an input, under any request id, falls on the same side, so no update ever trains on
    an input the gate or the trainer's holdout scores as unseen.
    """
    a = np.asarray(rows)
    canon = np.ascontiguousarray(a, dtype=np.float32 if a.dtype.kind == "f" else np.int64).reshape(len(a), -1)
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=4).digest(), "little") / 2**32 for r in canon),
        dtype=np.float64,
        count=len(canon),
    )


class InputError(ValueError):
    """A tensor that does not fit the declared input; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def normalize_datatype(datatype: str) -> str:
    """The datatype's canonical spelling, or `InputError` naming the ones supported."""
    name = str(datatype).upper().removeprefix("TYPE_")
    if name not in NUMPY_DTYPES:
        raise InputError("unsupported_datatype", f"datatype {datatype!r} is not supported; use one of {', '.join(NUMPY_DTYPES)}")
    return name


def datatype_of(array: np.ndarray) -> str:
    """The Triton datatype of a numpy array of one of the supported dtypes."""
    for name, dtype in NUMPY_DTYPES.items():
        if array.dtype == dtype:
            return name
    raise InputError("unsupported_datatype", f"numpy dtype {array.dtype} is not one of {', '.join(NUMPY_DTYPES)}")


def is_integer(datatype: str) -> bool:
    return normalize_datatype(datatype) in INTEGER_DATATYPES


def torch_dtype(datatype: str) -> Any:
    import torch

    return getattr(torch, np.dtype(NUMPY_DTYPES[normalize_datatype(datatype)]).name)  # torch.float32, torch.int64, ...


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What one input of a model looks like, without the batch dimension."""

    shape: tuple[int, ...]
    datatype: str = "FP32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "datatype", normalize_datatype(self.datatype))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def integer(self) -> bool:
        return self.datatype in INTEGER_DATATYPES

    @property
    def numpy_dtype(self) -> type[np.generic]:
        return NUMPY_DTYPES[self.datatype]

    @property
    def compute_dtype(self) -> type[np.generic]:
        """What the eager model trains on: float32 for a floating input (FP16 trains in FP32;
        the exported artifact takes FP16 and casts), the integer type itself otherwise."""
        return self.numpy_dtype if self.integer else np.float32

    @property
    def triton_type(self) -> str:
        """The datatype as a Triton ``config.pbtxt`` writes it (``TYPE_FP32``)."""
        return f"TYPE_{self.datatype}"

    def fields(self, values: Any) -> tuple[list[float], list[int]]:
        """``(features, int_features)`` for one input given as an array or a flat sequence."""
        flat = np.asarray(values).reshape(-1)
        if flat.size != self.size:
            raise InputError("wrong_shape", f"the input has {flat.size} values; shape {list(self.shape)} holds {self.size}")
        if self.integer:
            if flat.size and not np.issubdtype(flat.dtype, np.integer):
                if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
                    raise InputError("wrong_datatype", f"{self.datatype} input holds non-integer values")
            return [], [int(v) for v in flat.tolist()]
        return [float(v) for v in flat.tolist()], []

    def batch(self, rows: Sequence[Sequence[float]], int_rows: Sequence[Sequence[int]] | None = None) -> np.ndarray:
        """The ``[n, *shape]`` tensor in this datatype from the events' flat lists."""
        source = int_rows if self.integer else rows
        n = len(rows) if not self.integer else len(int_rows or [])
        if n == 0:
            return np.zeros((0, *self.shape), self.numpy_dtype)
        return np.asarray(source, dtype=self.numpy_dtype).reshape(n, *self.shape)

    def synthetic(self, n: int, seed: int = 0) -> np.ndarray:
        """A batch for proofs and probes: standard normal values, or ids 0 and 1 (every vocabulary has them)."""
        rng = np.random.default_rng(seed)
        if self.integer:
            return rng.integers(0, 2, size=(n, *self.shape)).astype(self.numpy_dtype)
        return rng.normal(size=(n, *self.shape)).astype(self.numpy_dtype)

    @classmethod
    def of(cls, value: "InputSpec | Sequence[int]") -> "InputSpec":
        """A spec, from a spec or from a bare shape (FP32, what every model took before v2)."""
        return value if isinstance(value, InputSpec) else cls(tuple(value))

    def rows_of(self, features: Sequence[float], int_features: Sequence[int]) -> Sequence[Any]:
        """The list among an event's two that holds this input's values."""
        return int_features if self.integer else features
