"""From drift to update request: drift events, the update policy, the outbox, snapshots.

`Decisions` is mixed into `DriftService`. A firing detector becomes a `DriftEvent`; a firing
trigger detector makes the model wait for ``min_samples`` samples, then one Redis script
decides (in flight, cooldown, or requested) and saves the snapshot with the request. Events are
saved in the model's outbox before they are produced and removed once acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from confluent_kafka import Message

from services.common.events import DriftEvent, OffsetRange, UpdateRequest
from services.common.serde import encode_event
from services.common.topics import DRIFT, SAMPLES, UPDATES
from services.drift.publish import Completion
from services.drift.records import deterministic_id, now_ms
from services.drift.state import Firing, ModelState

_log = logging.getLogger("modelci.drift")


class Decisions:
    """Mixin of `DriftService` (uses its settings, metrics, Redis, policy and publisher)."""

    settings: Any
    metrics: Any
    redis: Any
    policy: Any
    publisher: Any
    topics: dict[str, str]
    _sample_outstanding: dict[str, int]

    def prefix(self, model: str) -> str:  # provided by DriftService
        raise NotImplementedError

    def _send_outbox(self, state: ModelState, event_id: str) -> None:
        logical, value = state.outbox[event_id]
        prefix = self.prefix(state.model)

        def delivered(_msg: Message) -> None:
            state.outbox.pop(event_id, None)
            asyncio.ensure_future(self.redis.hdel(prefix + "outbox", event_id))

        self.publisher.send(self.topics[logical], state.model.encode(), value, on_ok=delivered)

    async def _after_record(self, state: ModelState, firings: list[Firing], done: Completion) -> None:
        if firings:
            await self._on_drift(state, firings)
        pending = state.pending
        if pending is not None and not state.requesting and state.samples - pending["at_samples"] >= self.settings.min_samples:
            await self._request_update(state)

    async def _on_drift(self, state: ModelState, firings: list[Firing]) -> None:
        new_ids = []
        for firing in firings:
            spec = firing.slot.spec
            self.metrics.drifts.labels(state.model, spec.name, spec.signal).inc()
            event = DriftEvent(
                model=state.model,
                version=max(state.version, 0),
                detector=spec.name,
                signal=spec.signal,
                statistics={k: float(v) for k, v in firing.statistics.items()},
                topic=firing.topic,
                partition=firing.partition,
                offset=firing.offset,
                observations=firing.observations,
                event_id=deterministic_id("drift", state.model, spec.name, firing.topic, firing.partition, firing.offset, firing.slot.detections),
            )
            _log.info(
                "drift in %s: %s on %s at %s[%d]@%d after %d observations",
                state.model, spec.name, spec.signal, firing.topic, firing.partition, firing.offset, firing.observations,
            )
            state.outbox[event.event_id] = (DRIFT, encode_event(event))
            new_ids.append(event.event_id)
            if spec.trigger and state.pending is None:
                state.pending = {"drift_event_id": event.event_id, "detector": spec.name, "at_samples": state.samples}
        await self._persist(state, new_ids)
        for event_id in new_ids:
            self._send_outbox(state, event_id)

    async def _request_update(self, state: ModelState) -> None:
        model = state.model
        pending = state.pending
        assert pending is not None
        state.requesting = True
        try:
            # The request names offsets, so wait until this model's samples so far have them.
            await self.publisher.drain(30.0, until=lambda: self._sample_outstanding.get(model, 0) == 0)
            prefix = self.prefix(model)
            starts = await self.policy.range_starts(prefix)
            ends = dict(state.sample_ends)
            ranges = [
                OffsetRange(partition=p, start=starts.get(p, end), end=end)
                for p, end in sorted(ends.items())
                if starts.get(p, end) < end
            ]
            request_id = deterministic_id("update", model, pending["drift_event_id"])
            request = UpdateRequest(
                model=model,
                base_version=max(state.version, 0),
                reason="drift",
                sample_ranges=ranges,
                drift_event_id=pending["drift_event_id"],
                samples_topic=SAMPLES,  # logical name: each reader adds its own topic prefix
                event_id=request_id,
            )
            value = encode_event(request)
            state.pending = None
            snapshot = json.dumps(state.snapshot())
            outcome = await self.policy.request(prefix, request_id, now_ms(), snapshot, request_id, UPDATES.encode() + b"|" + value, ends)
            state.dirty = False
            self.metrics.update_requests.labels(model, outcome).inc()
            _log.info(
                "update of %s after %s: %s (%d sample batches in %d ranges)",
                model, pending["detector"], outcome, sum(r.end - r.start for r in ranges), len(ranges),
            )
            if outcome == "requested":
                state.outbox[request_id] = (UPDATES, value)
                self._send_outbox(state, request_id)
        finally:
            state.requesting = False

    async def _persist(self, state: ModelState, outbox_ids: list[str] = ()) -> None:  # type: ignore[assignment]
        """Saves the snapshot (and new outbox entries) atomically."""
        prefix = self.prefix(state.model)
        snapshot = json.dumps(state.snapshot())
        state.dirty = False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(prefix + "state", snapshot)
            for event_id in outbox_ids:
                logical, value = state.outbox[event_id]
                pipe.hset(prefix + "outbox", event_id, logical.encode() + b"|" + value)
            await pipe.execute()

