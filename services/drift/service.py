"""The drift service's core: decode, join, detect, publish; no Faust in here.

`DriftService` is driven by the thin Faust agents in `app.py` (and directly by tests): each
agent step hands it a list of `InRecord` and gets back a future that resolves once every
effect of those records is durable (samples acknowledged by the broker, state in Redis). Only
then does the agent acknowledge the records to Faust, which commits their offsets.

Guarantees (see docs/drift.md for the full argument):
- every joined (prediction, feedback) pair is published to ``cl.samples`` at least once, and all
  copies of it sit in a batch with the same deterministic ``event_id`` (a hash of the input
  record that made the join); a copy is published twice only if a worker dies after the broker
  acknowledged the batch and before Redis recorded that (a window of milliseconds). Consumers
  keep the first batch per ``event_id`` (or sample per ``sample_id``).
- join counters, detector observations and drift decisions count every input event once,
  whatever is redelivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

from confluent_kafka import Producer

from services.common.errors import SerdeError
from services.common.events import DeadLetter
from services.common.kafka import producer as kafka_producer
from services.common.serde import AvroSerde, default_serde, encode_event
from services.common.topics import CANDIDATES, DRIFT, FEEDBACK, PREDICTIONS, SAMPLES, UPDATES, dlq
from services.drift.columns import BatchReader, Feedbacks, Predictions
from services.drift.config import DetectorSpec, parse_specs
from services.drift.decisions import Decisions
from services.drift.errors import DetectorConfigError, DetectorStateError
from services.drift.inputs import InputHandling
from services.drift.join import JoinStore
from services.drift.metrics import DriftMetrics
from services.drift.policy import UpdatePolicy
from services.drift.publish import Completion, Publisher
from services.drift.records import InRecord, Step, deterministic_id, now_ms
from services.drift.redis_client import async_client
from services.drift.samples import SampleEncoder
from services.drift.settings import DriftSettings
from services.drift.state import ModelState

__all__ = ["DriftService", "InRecord", "Step", "deterministic_id"]

_log = logging.getLogger("modelci.drift")


class DriftService(InputHandling, Decisions):
    """Joins, detectors and update decisions for every model whose partitions this worker holds."""

    def __init__(self, settings: DriftSettings, metrics: DriftMetrics | None = None, producer: Producer | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or DriftMetrics()
        kafka = settings.kafka
        self.topics = {name: kafka.topic(name) for name in (PREDICTIONS, FEEDBACK, SAMPLES, DRIFT, UPDATES, CANDIDATES)}
        self.serde: AvroSerde = default_serde()
        self.encoder = SampleEncoder(self.serde)
        self.reader = BatchReader(self.serde, on_fallback=lambda event: self.metrics.read_by_serde.labels(event).inc())
        self.producer = producer or kafka_producer(kafka, **{"linger.ms": settings.producer_linger_ms})
        self.publisher = Publisher(self.producer, self.metrics, self.logical)
        self.models: dict[str, ModelState] = {}
        self.redis: Any = None
        self.joins: JoinStore
        self.policy: UpdatePolicy
        self._loading: dict[str, asyncio.Future[ModelState]] = {}
        self._marks: dict[str, list[str]] = {}
        self._sample_outstanding: dict[str, int] = {}
        self._known_starts: set[tuple[str, int]] = set()
        self._poller: asyncio.Task | None = None
        self._first_record = False
        self._in_children: dict[tuple[str, bool], tuple[Any, Any, Any]] = {}
        self._last_step: Step | None = None
        self._open_steps: deque[Step] = deque()

    def logical(self, topic: str) -> str:
        prefix = self.settings.kafka.topic_prefix
        return topic[len(prefix) :] if prefix and topic.startswith(prefix) else topic

    # --- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self.redis = async_client(self.settings.redis)
        await self.redis.ping()
        self.joins = JoinStore(self.redis, self.settings.redis_prefix(), self.settings.join_ttl_s, self.settings.dedupe_ttl_s)
        self.policy = UpdatePolicy(self.redis, self.settings.cooldown_s, self.settings.inflight_timeout_s,
                                   self.settings.failed_update_backoff_s, self.settings.failed_update_max_backoff_s)
        self._poller = asyncio.ensure_future(self.publisher.run())

    async def stop(self) -> None:
        """Saves every model's state and waits for what is queued to be acknowledged."""
        try:
            await self.persist_all()
            await self.publisher.drain(30.0)
        finally:
            self.publisher.stop()
            if self._poller is not None:
                await asyncio.gather(self._poller, return_exceptions=True)
            if self.redis is not None:
                await self.joins.close()
                await self.redis.aclose()

    # --- models ---------------------------------------------------------------------------------
    def prefix(self, model: str) -> str:
        return self.joins.model_prefix(model)

    async def specs_for(self, model: str) -> list[DetectorSpec]:
        raw = await self.redis.get(f"{self.settings.redis_prefix()}config:{model}")
        if raw:
            try:
                return parse_specs(raw)
            except DetectorConfigError:
                _log.exception("bad detector configuration in Redis for %s; using the settings", model)
        return self.settings.model_detectors.get(model) or self.settings.detectors

    async def model(self, model: str) -> ModelState:
        state = self.models.get(model)
        if state is not None:
            return state
        loading = self._loading.get(model)
        if loading is None:
            loading = self._loading[model] = asyncio.ensure_future(self._load(model))
        try:
            return await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loading.pop(model, None)

    async def _load(self, model: str) -> ModelState:
        prefix = self.prefix(model)
        specs = await self.specs_for(model)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(prefix + "state")
            pipe.hgetall(prefix + "outbox")
            raw_state, outbox = await pipe.execute()
        data = json.loads(raw_state) if raw_state else None
        try:
            state = ModelState.restore(model, specs, data)
        except DetectorStateError:
            _log.exception("saved state of %s does not restore; starting its detectors afresh", model)
            state = ModelState.restore(model, specs, {k: v for k, v in (data or {}).items() if k != "slots"})
        for field, value in outbox.items():
            topic, _, payload = value.partition(b"|")
            state.outbox[field.decode()] = (topic.decode(), payload)
        self.models[model] = state
        self.metrics.models.set(len(self.models))
        for event_id in list(state.outbox):
            self._send_outbox(state, event_id)
        _log.info("model %s loaded (version %s, %d samples, %d unsent events)", model, state.version, state.samples, len(state.outbox))
        return state

    # --- input ----------------------------------------------------------------------------------
    def _decode(self, event: str, rec: InRecord, done: Completion) -> dict[str, Any] | None:
        try:
            return self.serde.decode(event, rec.value, topic=rec.topic, partition=rec.partition, offset=rec.offset)
        except SerdeError as exc:
            self._dead_letter(rec, exc.reason, exc.detail, done)
            return None

    def _dead_letter(self, rec: InRecord, reason: str, detail: str, done: Completion) -> None:
        letter = DeadLetter(
            service="drift",
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            reason=reason,
            detail=detail,
            key=rec.key,
            value=rec.value,
            event_id=deterministic_id("dlq", rec.topic, rec.partition, rec.offset),
        )
        label = self.logical(rec.topic)
        self.metrics.records_in.labels(label, "dlq").inc()
        self.metrics.dlq.labels(label, reason).inc()
        _log.warning("dead letter %s[%d]@%d: %s: %s", rec.topic, rec.partition, rec.offset, reason, detail)
        self.publisher.send(dlq(rec.topic), rec.key, encode_event(letter), completion=done)

    def _received(self, topic: str) -> None:
        now = time.time()
        if not self._first_record:
            self._first_record = True
            self.metrics.first_record_time.set(now)
        self.metrics.last_record_time.labels(topic).set(now)

    def _read(self, topic: str, rec: InRecord, done: Completion) -> Predictions | Feedbacks | None:
        try:
            if topic == PREDICTIONS:
                return self.reader.predictions(rec.value, rec.partition, rec.offset, rec.topic)
            return self.reader.feedback(rec.value, rec.partition, rec.offset, rec.topic)
        except SerdeError as exc:
            self._dead_letter(rec, exc.reason, exc.detail, done)
            return None

    async def _group(self, topic: str, records: list[InRecord], done: Completion) -> dict[str, list[tuple[InRecord, Any]]]:
        by_model: dict[str, list[tuple[InRecord, Any]]] = {}
        for i, rec in enumerate(records):
            batch = self._read(topic, rec, done)
            if batch is not None:
                by_model.setdefault(batch.model, []).append((rec, batch))
            if i % 8 == 7:
                await asyncio.sleep(0)  # replies of the other agent's scripts get served meanwhile
        return by_model

    async def begin(self, topic: str, records: list[InRecord]) -> "Step":
        """First half of a step: decode, pack, and send the join scripts (not awaited).

        Steps of both agents form one chain: their scripts go to Redis in the order the steps
        began, on one connection (`ordered.OrderedScript`), and steps complete in that same
        order. So Redis runs the joins in a known order and the detectors see the observations
        in exactly that order, while Redis runs the scripts of earlier steps as the worker reads
        the next records and finishes the previous step. At most ``steps_in_flight`` steps are
        unfinished at a time (the agent waits before taking more).
        """
        loop = asyncio.get_running_loop()
        done = Completion(loop)
        prepare = self._prepare_predictions if topic == PREDICTIONS else self._prepare_feedback
        try:
            by_model = await self._group(topic, records, done)
            prepared = [prepare(m, recs) for m, recs in by_model.items()]
        except BaseException:
            done.seal()
            raise
        # Take a place in the chain and send the scripts, with no await in between: calls on the
        # ordered connection run in Redis in the order they are sent.
        previous = self._last_step
        step = Step(topic, records, done, prepared, loop.create_future(), previous, loop.create_future())
        self._last_step = step
        calls = [self.joins.send(p.mode, p.model, p.batches, now_ms(), self._take_marks(p.model)) for p in prepared]
        gathered = asyncio.gather(*calls)

        def replied(future: asyncio.Future[list[Any]]) -> None:
            if step.replied.done():
                return
            if future.cancelled():
                step.replied.cancel()
            elif future.exception() is not None:
                step.replied.set_exception(future.exception())  # type: ignore[arg-type]
            else:
                step.replied.set_result(future.result())

        gathered.add_done_callback(replied)
        self._open_steps.append(step)
        while len(self._open_steps) > self.settings.steps_in_flight:
            await asyncio.wait([self._open_steps[0].completed])
        return step

    async def complete(self, step: "Step") -> asyncio.Future[None]:
        """Second half: detectors, samples, drift decisions, in the order the steps began.

        Returns the future that resolves when the step's effects are durable."""
        finish = self._finish_predictions if step.topic == PREDICTIONS else self._finish_feedback
        try:
            results = await step.replied
            if step.previous is not None:
                await asyncio.wait([step.previous.completed])
                step.previous = None  # completed: the chain needs no older link
            for prep, result in zip(step.prepared, results):
                await finish(prep, result, step.done)
        except BaseException as exc:
            if not step.done.future.done():
                step.done.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            raise
        finally:
            step.done.seal()
            self._step_metrics(step.topic, step.records)
            if not step.completed.done():
                step.completed.set_result(None)
            while self._open_steps and self._open_steps[0].completed.done():
                self._open_steps.popleft()
        return step.done.future

    async def handle_predictions(self, records: list[InRecord]) -> asyncio.Future[None]:
        """Handles prediction batches; the returned future resolves when their effects are durable."""
        return await self.complete(await self.begin(PREDICTIONS, records))

    async def handle_feedback(self, records: list[InRecord]) -> asyncio.Future[None]:
        """Handles feedback batches; the returned future resolves when their effects are durable."""
        return await self.complete(await self.begin(FEEDBACK, records))

    async def handle_candidates(self, records: list[InRecord]) -> asyncio.Future[None]:
        """A candidate answers an update request: the model's in-flight marker is cleared."""
        done = Completion(asyncio.get_running_loop())
        try:
            for rec in records:
                record = self._decode("Candidate", rec, done)
                if record is None:
                    continue
                self.metrics.records_in.labels(CANDIDATES, "ok").inc()
                model = record["model"]
                cleared, failures, wait_ms = await self.policy.answered(self.prefix(model), record["update_id"], record["outcome"], now_ms())
                if cleared:
                    self.metrics.inflight_cleared.labels(model).inc()
                    self.metrics.update_failures.labels(model).set(failures)
                    self.metrics.update_backoff_seconds.labels(model).set(wait_ms / 1000)
                    if failures:
                        _log.warning("update %s of %s failed (%s, %d in a row): no request for %.0f s",
                                     record["update_id"], model, record.get("reason"), failures, wait_ms / 1000)
                    else:
                        _log.info("update %s of %s answered (%s); next request allowed", record["update_id"], model, record["outcome"])
        finally:
            done.seal()
        return done.future

    async def flush_marks(self) -> None:
        """Records in Redis which handled records' samples the broker has acknowledged."""
        for model in list(self._marks):
            marks = self._take_marks(model)
            if marks:
                await self.joins.run("p", model, [], now_ms(), marks)

    async def persist_all(self, only_dirty: bool = False) -> None:
        await self.flush_marks()
        for state in list(self.models.values()):
            if state.dirty or not only_dirty:
                await self._persist(state)

    async def tick(self) -> None:
        """Periodic work: snapshots of changed models, published marks, gauges."""
        await self.persist_all(only_dirty=True)
        metrics = self.metrics
        for state in list(self.models.values()):
            for slot in state.slots.values():
                labels = (state.model, slot.spec.name, slot.spec.signal)
                metrics.detector_value.labels(*labels).set(state.main_value(slot))
                metrics.detector_observations.labels(*labels).set(slot.observations)
            for outcome, value in (await self.joins.stats(state.model)).items():
                metrics.join_total.labels(state.model, outcome).set(value)

    async def sweep(self) -> None:
        for model in list(self.models):
            expired = await self.joins.sweep(model, now_ms())
            if expired:
                self.metrics.join.labels(model, "expiry").inc(expired)

    async def release(self, revoked: set[tuple[str, int]]) -> None:
        """Partitions went to another worker: save and forget the models they carried."""
        await self.flush_marks()
        for model, state in list(self.models.items()):
            if state.sources & revoked:
                await self._persist(state)
                del self.models[model]
                _log.info("model %s released", model)
        self.metrics.models.set(len(self.models))
