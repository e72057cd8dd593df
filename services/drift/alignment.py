"""Keeps the feedback agent from running ahead of the predictions agent in event time.

The two input topics are consumed independently. When both have a backlog (a worker catching
up after an outage, a rebalance, the benchmark), feedback records are several times smaller
than prediction records, so the feedback agent reads further ahead and most feedback arrives
at the join before its prediction. It still joins (feedback is parked and the prediction picks
it up), but parking costs Redis twice the work of the usual order: measured in
``modelci bench drift``, 93 % of the feedback was parked and Redis was the bottleneck.

So, like Kafka Streams choosing the record with the lowest timestamp among co-partitioned
inputs, a feedback step waits until the predictions agent has begun records at least as recent
as its own (per partition, by Kafka record timestamp), unless the predictions of that partition
are caught up (nothing more to read) or ``max_wait_s`` has passed. It only orders work; no
result depends on it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable

from services.drift.records import InRecord


class Alignment:
    """Latest prediction timestamps begun, per partition; feedback steps wait on them."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self.predictions: dict[int, float] = {}
        self._changed = asyncio.Event()

    def predictions_begun(self, records: Iterable[InRecord]) -> None:
        latest = self.predictions
        for rec in records:
            if rec.timestamp > latest.get(rec.partition, -math.inf):
                latest[rec.partition] = rec.timestamp
        self._changed.set()

    def behind(self, records: Iterable[InRecord], caught_up: Callable[[int], bool]) -> list[int]:
        """Partitions whose predictions are older than these feedback records and still being read."""
        needed: dict[int, float] = {}
        for rec in records:
            if rec.timestamp > needed.get(rec.partition, -math.inf):
                needed[rec.partition] = rec.timestamp
        latest = self.predictions
        return [p for p, ts in needed.items() if latest.get(p, -math.inf) < ts and not caught_up(p)]

    async def wait(self, records: list[InRecord], caught_up: Callable[[int], bool]) -> float:
        """Waits (at most ``max_wait_s``) until the predictions are as recent as ``records``;
        returns the seconds waited."""
        if self.max_wait_s <= 0 or not self.behind(records, caught_up):
            return 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.max_wait_s
        while self.behind(records, caught_up):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._changed.clear()
            try:
                # woken by the next predictions step, or re-checked shortly (caught_up changes
                # as the consumer fetches, without a predictions step)
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass
        return loop.time() - start
