"""The Kafka side of the inference service: consume, micro-batch, publish, commit.

One thread runs the loop: it takes requests from ``inference.requests`` (as one member of a
consumer group), hands each micro-batch to the `InferencePipeline`, and publishes one
`PredictionBatch` per (model, answering version) to ``inference.predictions`` and one
`DeadLetter` per rejected or undecodable request to ``inference.requests.dlq``. An offset is
committed only once the record that answers it was acknowledged by the broker (delivery
callbacks feed the `OffsetTracker`), so a crash replays requests and never loses one; replays
may publish a prediction twice for a request, which consumers dedup on ``request_id``.

While Triton is down the pipeline retries; meanwhile the loop pauses its partitions and keeps
polling, so the worker stays in its group however long the outage lasts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from services.common import kafka
from services.common.errors import SerdeError, TransientError
from services.common.events import DeadLetter, InferenceRequest, PredictionBatch
from services.common.serde import decode_event, encode_event
from services.common.topics import PREDICTIONS, REQUESTS, dlq
from services.inference.core import Backoff, MicroBatcher, Pending, assemble
from services.inference.metrics import InferenceMetrics
from services.inference.offsets import OffsetTracker
from services.inference.pipeline import Gateway, InferencePipeline
from services.inference.settings import InferenceSettings
from services.inference.triton import TritonGateway

SERVICE = "inference"
_log = structlog.get_logger("modelci.inference")


def _tp(msg: Message) -> tuple[str, int]:
    return (msg.topic(), msg.partition())


class InferenceWorker:
    def __init__(
        self,
        settings: InferenceSettings,
        metrics: InferenceMetrics | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        s = settings
        self.settings = s
        self.metrics = metrics or InferenceMetrics()
        self.gateway = gateway or TritonGateway(
            s.triton,
            protocol=s.triton_protocol,
            timeout_s=s.triton_timeout_s,
            metadata_ttl_s=s.metadata_ttl_s,
            reconnect_max_ms=s.retry_max_ms,
        )
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self.pipeline = InferencePipeline(
            self.gateway,
            backoff=Backoff(s.retry_initial_ms / 1000, s.retry_max_ms / 1000),
            internal_error_retries=s.internal_error_retries,
            model_not_ready_grace_s=s.model_not_ready_grace_s,
            concurrency=s.triton_concurrency,
            abort=self._abort,
            metrics=self.metrics,
        )
        self.requests_topic = s.kafka.topic(REQUESTS)
        self.predictions_topic = s.kafka.topic(PREDICTIONS)
        self.dlq_topic = dlq(self.requests_topic)
        self.assigned = threading.Event()
        """Set once the group has given this worker its partitions (tests wait on it)."""
        self.partitions: frozenset[tuple[str, int]] = frozenset()
        """The partitions this worker owns now (kept by the rebalance callbacks)."""
        self._batcher: MicroBatcher[Message] = MicroBatcher(s.batch_size, s.batch_deadline_ms / 1000)
        self._tracker = OffsetTracker()
        self._fatal: Exception | None = None
        self._paused = False
        self._last_commit = 0.0
        self._consumer: Any = None
        self._producer: Any = None

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Graceful stop: finish the current batch, publish, commit, leave the group.

        A batch still waiting for Triton after ``shutdown_timeout_s`` is abandoned uncommitted."""
        if not self._stopping.is_set():
            self._stopping.set()
            timer = threading.Timer(self.settings.shutdown_timeout_s, self._abort.set)
            timer.daemon = True
            timer.start()

    def abort(self) -> None:
        """Stop now: whatever waits for Triton is abandoned (and redelivered later)."""
        self._abort.set()
        self._stopping.set()

    def run(self) -> None:
        try:
            self._connect()
            while not self._stopping.is_set() and self._fatal is None:
                self._intake(self._poll_timeout())
                while self._batcher.due() and self._fatal is None:
                    if not self._process(self._batcher.take()):
                        break
                self._producer.poll(0)
                self._commit()
            while len(self._batcher) and not self._abort.is_set() and self._fatal is None:
                if not self._process(self._batcher.take()):  # SIGTERM: finish what was taken
                    break
        finally:
            self._shutdown()
        if self._fatal is not None:
            raise self._fatal

    def _connect(self) -> None:
        s = self.settings
        if s.create_topics:
            n = s.topic_partitions
            kafka.ensure_topics(s.kafka, {REQUESTS: n, PREDICTIONS: n, dlq(REQUESTS): n})
        self._producer = kafka.producer(s.kafka, **{"linger.ms": s.producer_linger_ms})
        extra: dict[str, Any] = {}
        if s.statistics_interval_ms > 0:
            extra = {"statistics.interval.ms": s.statistics_interval_ms, "stats_cb": self.metrics.record_statistics}
        self._consumer = kafka.consumer(s.kafka, s.group_id, **extra)
        self._consumer.subscribe(
            [self.requests_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        _log.info(
            "inference_running",
            topic=self.requests_topic,
            group=s.group_id,
            batch_size=s.batch_size,
            deadline_ms=s.batch_deadline_ms,
            triton=s.triton_protocol,
        )

    def _shutdown(self) -> None:
        uncommitted = 0
        try:
            if self._producer is not None:
                left = self._producer.flush(self.settings.shutdown_timeout_s)
                if left:
                    _log.error("unacknowledged_at_shutdown", records=left)
            if self._consumer is not None:
                self._commit(force=True)
                uncommitted = self._tracker.pending()  # requests the next owner will get again
                self._consumer.close()  # leaves the group: partitions move at once
        finally:
            self.pipeline.close()
            close = getattr(self.gateway, "close", None)
            if close is not None:
                close()
            _log.info("inference_stopped", uncommitted=uncommitted)

    # --- consuming ------------------------------------------------------------------------------
    def _poll_timeout(self) -> float:
        left = self._batcher.time_left()
        return 0.1 if left is None else min(left, 0.1)

    def _intake(self, timeout: float) -> None:
        for msg in self._consumer.consume(num_messages=max(self._batcher.room(), 1), timeout=timeout):
            self._accept(msg)

    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                _log.warning("consumer_error", error=str(err))
                if err.fatal():
                    raise KafkaException(err)
            return
        self._tracker.track(_tp(msg), msg.offset())
        try:
            req = decode_event(
                InferenceRequest, msg.value(), topic=msg.topic(), partition=msg.partition(), offset=msg.offset()
            )
        except SerdeError as exc:
            self.metrics.events_in.labels(msg.topic(), "dead_letter").inc()
            self._dead_letter(msg, exc.reason, exc.detail, None)
            return
        self.metrics.events_in.labels(msg.topic(), "ok").inc()
        self._batcher.add(Pending(req, msg))

    # --- one micro-batch ------------------------------------------------------------------------
    def _process(self, batch: list[Pending[Message]]) -> bool:
        """Runs and publishes a batch; False when it was abandoned (the worker is stopping)."""
        self.metrics.micro_batch_size.observe(len(batch))
        try:
            outcome = self.pipeline.process(batch, keepalive=self._keepalive)
        finally:
            self._resume()

        def owned(item: Pending[Message]) -> bool:  # its partition was not revoked meanwhile
            return self._tracker.is_pending(_tp(item.ref), item.ref.offset())

        for record, items in assemble(outcome.answered, owned):
            self._publish(record, items)
        for rejected in outcome.rejected:
            if owned(rejected.item):
                ref, reason = rejected.item.ref, rejected.rejection
                self._dead_letter(ref, reason.reason, reason.detail, rejected.item.request.request_id)
        self._producer.poll(0)
        if outcome.abandoned:
            _log.warning("batch_abandoned", requests=len(outcome.abandoned), note="left uncommitted; redelivered")
            self._stopping.set()
            return False
        return True

    def _publish(self, record: PredictionBatch, items: list[Pending[Message]]) -> None:
        refs = [(_tp(it.ref), it.ref.offset()) for it in items]
        latency = self.metrics.request_latency.labels(record.model, str(record.version))
        for pred in record.items:
            latency.observe(max(pred.latency_ms, 0.0) / 1000)
        on_ack = partial(self._delivered, refs, self.predictions_topic, (record.model, record.version, len(items)))
        self._produce(self.predictions_topic, record.model.encode(), encode_event(record), on_ack)

    def _dead_letter(self, msg: Message, reason: str, detail: str, request_id: str | None) -> None:
        letter = DeadLetter(
            service=SERVICE,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            reason=reason,
            detail=detail[:4000],
            key=msg.key(),
            value=msg.value(),
            request_id=request_id,
        )
        self.metrics.dead_letters.labels(reason).inc()
        _log.info("dead_letter", reason=reason, request_id=request_id, partition=msg.partition(), offset=msg.offset())
        on_ack = partial(self._delivered, [(_tp(msg), msg.offset())], self.dlq_topic, None)
        self._produce(self.dlq_topic, msg.key(), encode_event(letter), on_ack)

    def _produce(self, topic: str, key: bytes | None, value: bytes, on_ack: Callable[..., None]) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=on_ack)
                return
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.1)

    def _delivered(
        self,
        refs: list[tuple[tuple[str, int], int]],
        topic: str,
        counts: tuple[str, int, int] | None,
        err: KafkaError | None,
        _msg: Message,
    ) -> None:
        """Delivery callback of one output record: marks the offsets it answers done."""
        if err is not None:
            # librdkafka already retried for message.timeout.ms: stop without committing past it.
            self.metrics.events_out.labels(topic, "failed").inc()
            _log.error("delivery_failed", topic=topic, error=str(err))
            if self._fatal is None:
                self._fatal = TransientError(f"a record to {topic} was not delivered: {err}")
            return
        self.metrics.events_out.labels(topic, "delivered").inc()
        for tp, offset in refs:
            self._tracker.done(tp, offset)
        if counts is not None:
            model, version, n = counts
            self.metrics.predictions.labels(model, str(version)).inc(n)

    # --- commits and group membership -----------------------------------------------------------
    def _commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_commit < self.settings.commit_interval_ms / 1000:
            return
        self._last_commit = now
        points = self._tracker.commit_points()
        if not points:
            return
        try:
            self._consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in points.items()], asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance under way; offered again next time
            self.metrics.commits.labels("failed").inc()
            _log.warning("commit_failed", error=str(exc))
            return
        self._tracker.committed(points)
        self.metrics.commits.labels("ok").inc()

    def _keepalive(self) -> None:
        """While Triton is retried: partitions paused, consumer polled, acks and commits served."""
        if not self._paused:
            if self.partitions:
                self._consumer.pause(self._owned())
            self._paused = True
        for msg in self._consumer.consume(num_messages=100, timeout=0):
            self._accept(msg)  # only partitions assigned since the pause can deliver
        self._producer.poll(0)
        self._commit()

    def _resume(self) -> None:
        if self._paused:
            if self.partitions:
                self._consumer.resume(self._owned())
            self._paused = False

    def _owned(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.partitions)]

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if self._paused:  # assign now so the new partitions can be paused like the others
            consumer.assign(partitions)
            consumer.pause(partitions)
        self.partitions = self.partitions | {(p.topic, p.partition) for p in partitions}
        _log.info("partitions_assigned", partitions=[p.partition for p in partitions])
        self.assigned.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Before partitions move: publish what is answered, commit it, drop the rest."""
        self._producer.flush(self.settings.shutdown_timeout_s)
        self._commit(force=True)
        self._forget(partitions, "partitions_revoked")

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._forget(partitions, "partitions_lost")  # commits would fail; the new owner replays

    def _forget(self, partitions: list[TopicPartition], event: str) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        self.partitions = self.partitions - tps
        self._tracker.forget(tps)
        dropped = self._batcher.discard(lambda it: _tp(it.ref) in tps)
        for topic, partition in tps:
            try:
                self.metrics.consumer_lag.remove(topic, str(partition))
            except KeyError:
                pass
        _log.info(event, partitions=sorted(p for _, p in tps), dropped=len(dropped))
