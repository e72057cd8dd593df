"""The inference service's core: micro-batching, validation and prediction building.

Nothing here knows Kafka or Triton's client. A `Pending` request carries an opaque ``ref`` (the
worker puts the Kafka message there) and a model is described by `ModelInfo`, so every rule is
a plain function the unit tests call directly.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from services.common.events import InferenceRequest, Prediction, PredictionBatch, now_ms
from services.common.tensors import InputError, InputSpec, is_integer

R = TypeVar("R")

# Dead-letter reasons this service writes (besides the SerdeError reasons of undecodable records).
UNKNOWN_MODEL = "unknown_model"
WRONG_SHAPE = "wrong_shape"
WRONG_DTYPE = "wrong_dtype"
TRITON_REJECTED = "triton_rejected"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the service must know about a model to validate and send requests to it."""

    name: str
    datatype: str
    """Triton datatype of the input tensor, e.g. ``FP32``."""
    dims: tuple[int, ...]
    """Shape of one input without the batch dimension; -1 means any size."""
    max_batch_size: int
    """Largest batch the model takes; 0 means the model does not batch (one request per call)."""
    input_name: str = "INPUT__0"
    output_name: str = "OUTPUT__0"


@dataclass(slots=True)
class Pending(Generic[R]):
    """A decoded request waiting for its prediction; ``ref`` says where it came from."""

    request: InferenceRequest
    ref: R


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request cannot be answered: a dead-letter reason and a readable detail."""

    reason: str
    detail: str


# --- validation -----------------------------------------------------------------------------


def check_request(req: InferenceRequest) -> Rejection | None:
    """Checks that need no model: a datatype ModelCI-e carries, its values in the list that
    datatype travels in (``features`` or ``int_features``, the other one empty), as many as the
    declared shape holds."""
    if not req.shape or any(d <= 0 for d in req.shape):
        return Rejection(WRONG_SHAPE, f"shape {list(req.shape)} has no elements")
    try:
        integer = is_integer(req.datatype)
    except InputError as exc:
        return Rejection(WRONG_DTYPE, str(exc))
    values, other = (req.int_features, req.features) if integer else (req.features, req.int_features)
    if other:
        field, where = ("features", "int_features") if integer else ("int_features", "features")
        return Rejection(WRONG_DTYPE, f"a {req.datatype} request carries its values in {where}, but {len(other)} {field} were sent")
    size = math.prod(req.shape)
    if size != len(values):
        detail = f"shape {list(req.shape)} holds {size} values but {len(values)} {'int_features' if integer else 'features'} were sent"
        return Rejection(WRONG_SHAPE, detail)
    if integer and req.datatype.upper() == "INT32" and values and not (-(2**31) <= min(values) and max(values) < 2**31):
        return Rejection(WRONG_DTYPE, "an INT32 request holds values outside the 32-bit range")
    return None


def check_against_model(req: InferenceRequest, info: ModelInfo) -> Rejection | None:
    """Checks a request against the model's input: datatype first, then the dims."""
    if req.datatype.upper() != info.datatype.upper():
        return Rejection(WRONG_DTYPE, f"{info.name} takes {info.datatype}, the request declares {req.datatype}")
    shape = tuple(req.shape)
    if len(shape) != len(info.dims) or any(d != -1 and d != s for d, s in zip(info.dims, shape)):
        detail = f"{info.name} takes inputs of shape {list(info.dims)}, the request has {list(shape)}"
        return Rejection(WRONG_SHAPE, detail)
    return None


# --- grouping and results -------------------------------------------------------------------

GroupKey = tuple[str, "int | None", tuple[int, ...], str]
"""(model, pinned version, input shape, datatype): requests that can share one Triton call."""


def group_key(req: InferenceRequest) -> GroupKey:
    return (req.model, req.version, tuple(req.shape), req.datatype.upper())


def group(items: Iterable[Pending[R]]) -> dict[GroupKey, list[Pending[R]]]:
    """Requests by model, pinned version and shape, each group in arrival order."""
    groups: dict[GroupKey, list[Pending[R]]] = {}
    for item in items:
        groups.setdefault(group_key(item.request), []).append(item)
    return groups


def chunks(items: list[Pending[R]], size: int) -> Iterator[list[Pending[R]]]:
    """Slices of at most ``size`` items (``size`` <= 0 means one at a time)."""
    size = max(size, 1)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def input_array(items: list[Pending[Any]]) -> np.ndarray:
    """The batch tensor: ``[len(items), *shape]`` in the group's datatype, rows in the items' order."""
    first = items[0].request
    reqs = [it.request for it in items]
    return InputSpec(tuple(first.shape), first.datatype).batch([r.features for r in reqs], [r.int_features for r in reqs])


def predictions(items: list[Pending[Any]], scores: np.ndarray, answered_at_ms: int | None = None) -> list[Prediction]:
    """One `Prediction` per item from the model's output rows (class probabilities)."""
    at = now_ms() if answered_at_ms is None else answered_at_ms
    scores = np.asarray(scores, dtype=np.float32).reshape(len(items), -1)
    labels = scores.argmax(axis=1).tolist()
    confidences = scores.max(axis=1).tolist()
    rows = scores.tolist()
    out = []
    for item, row, label, confidence in zip(items, rows, labels, confidences):
        req = item.request
        out.append(
            Prediction(
                request_id=req.request_id,
                features=req.features,
                int_features=req.int_features,
                scores=row,
                label=label,
                confidence=confidence,
                latency_ms=float(at - req.sent_at_ms),
                requested_at_ms=req.sent_at_ms,
            )
        )
    return out


@dataclass(slots=True)
class Answered(Generic[R]):
    """Items one Triton call answered, with the version that answered and their predictions."""

    model: str
    version: int
    items: list[Pending[R]]
    predictions: list[Prediction]


@dataclass(slots=True)
class Rejected(Generic[R]):
    item: Pending[R]
    rejection: Rejection


@dataclass(slots=True)
class BatchOutcome(Generic[R]):
    """What became of every item of a micro-batch: answered, rejected, or abandoned.

    Abandoned items (the service stopped while Triton was down) get no output at all, so their
    offsets are never committed and they are redelivered.
    """

    answered: list[Answered[R]] = field(default_factory=list)
    rejected: list[Rejected[R]] = field(default_factory=list)
    abandoned: list[Pending[R]] = field(default_factory=list)

    def extend(self, other: "BatchOutcome[R]") -> None:
        self.answered += other.answered
        self.rejected += other.rejected
        self.abandoned += other.abandoned

    def reject(self, items: Iterable[Pending[R]], rejection: Rejection) -> None:
        self.rejected += [Rejected(item, rejection) for item in items]


def assemble(
    answered: Iterable[Answered[R]], keep: Callable[[Pending[R]], bool] = lambda _: True
) -> list[tuple[PredictionBatch, list[Pending[R]]]]:
    """One `PredictionBatch` per (model, answering version), with the items it answers.

    ``keep`` drops items the caller no longer owns (their partition moved to another worker).
    """
    merged: dict[tuple[str, int], tuple[list[Prediction], list[Pending[R]]]] = {}
    for ans in answered:
        preds, items = merged.setdefault((ans.model, ans.version), ([], []))
        for item, pred in zip(ans.items, ans.predictions):
            if keep(item):
                items.append(item)
                preds.append(pred)
    return [
        (PredictionBatch(model=model, version=version, items=preds), items)
        for (model, version), (preds, items) in merged.items()
        if items
    ]


# --- timing ---------------------------------------------------------------------------------


class MicroBatcher(Generic[R]):
    """Collects requests until ``max_size`` are waiting or the first has waited ``deadline_s``."""

    def __init__(self, max_size: int, deadline_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.deadline_s = deadline_s
        self._clock = clock
        self._items: list[Pending[R]] = []
        self._first_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Pending[R]) -> None:
        if not self._items:
            self._first_at = self._clock()
        self._items.append(item)

    def room(self) -> int:
        """How many more items fit before the batch is full."""
        return max(self.max_size - len(self._items), 0)

    def time_left(self) -> float | None:
        """Seconds until the deadline of the oldest item; None when empty."""
        if self._first_at is None:
            return None
        return max(self._first_at + self.deadline_s - self._clock(), 0.0)

    def due(self) -> bool:
        return len(self._items) >= self.max_size or (bool(self._items) and self.time_left() == 0.0)

    def take(self) -> list[Pending[R]]:
        """The oldest ``max_size`` items; the rest start a new batch (their clock restarts)."""
        batch, self._items = self._items[: self.max_size], self._items[self.max_size :]
        self._first_at = self._clock() if self._items else None
        return batch

    def discard(self, drop: Callable[[Pending[R]], bool]) -> list[Pending[R]]:
        """Removes and returns the items ``drop`` selects (e.g. of revoked partitions)."""
        gone = [it for it in self._items if drop(it)]
        if gone:
            self._items = [it for it in self._items if not drop(it)]
            if not self._items:
                self._first_at = None
        return gone


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``initial * 2**attempt`` capped at ``maximum``, times 0.5–1."""

    initial_s: float = 0.1
    maximum_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        base = min(self.maximum_s, self.initial_s * (2 ** min(attempt, 30)))
        return base * (0.5 + 0.5 * self.rng.random())
