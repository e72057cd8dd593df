"""Small value types the drift service passes around: input records, steps, ids."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from services.drift.publish import Completion


@dataclass(slots=True)
class InRecord:
    """One consumed Kafka record, whatever client consumed it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float = 0.0
    """Kafka record timestamp, seconds (only orders work: `alignment.Alignment`)."""


@dataclass(slots=True)
class Prepared:
    """One model's records of a step, decoded and packed for the join script."""

    model: str
    mode: str
    recs: list[tuple[InRecord, Any]]
    """(record, its `columns.Predictions` or `columns.Feedbacks`)"""
    batches: list[tuple[str, int, bytes, bytes]]


@dataclass(slots=True)
class Step:
    """One agent step between `DriftService.begin` and `DriftService.complete`."""

    topic: str
    records: list[InRecord]
    done: Completion
    prepared: list[Prepared]
    replied: asyncio.Future[list[Any]]
    previous: "Step | None"
    completed: asyncio.Future[None]


def deterministic_id(*parts: Any) -> str:
    """A 32-hex id that is the same every time the same inputs are handled."""
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)
