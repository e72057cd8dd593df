"""The thin Kafka adapter around the core: ``cl.updates`` in, ``cl.candidates`` out.

Exactly-once effect per request id on an at-least-once log: the answer to a request is stored in
Redis (keyed by its ``event_id``) before it is published, the request is marked done after the
publish is acknowledged, and only then is the offset committed. A redelivered request that is
done is skipped; one whose answer was stored but not yet marked done is re-published, never
re-trained. Undecodable requests go to ``cl.updates.dlq``. A dependency that is down leaves the
offset uncommitted and the request is retried after a pause.
"""

from __future__ import annotations

import threading
import time

import structlog
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from services.common import topics
from services.common.errors import SerdeError, TransientError
from services.common.events import Candidate, UpdateRequest
from services.common.kafka import DeadLetters, commit, flush
from services.common.serde import decode_event, encode_event
from services.common.settings import KafkaSettings
from services.trainer.core import Trainer
from services.trainer.metrics import TrainerMetrics

_log = structlog.get_logger("modelci.trainer.consumer")


class DoneSet:
    """Which requests are answered (a Redis set) and their stored answers (a Redis hash)."""

    def __init__(self, client, prefix: str) -> None:
        self.r = client
        self.done_key = f"{prefix}trainer:done"
        self.answers_key = f"{prefix}trainer:answers"

    def is_done(self, event_id: str) -> bool:
        return bool(self.r.sismember(self.done_key, event_id))

    def answer(self, event_id: str) -> bytes | None:
        return self.r.hget(self.answers_key, event_id)

    def store_answer(self, event_id: str, value: bytes) -> None:
        self.r.hset(self.answers_key, event_id, value)

    def mark_done(self, event_id: str) -> None:
        pipe = self.r.pipeline()
        pipe.sadd(self.done_key, event_id)
        pipe.hdel(self.answers_key, event_id)
        pipe.execute()


class UpdateLoop:
    def __init__(
        self,
        kafka: KafkaSettings,
        consumer: Consumer,
        producer: Producer,
        trainer: Trainer,
        done: DoneSet,
        metrics: TrainerMetrics,
        poll_timeout_s: float = 0.5,
        retry_pause_s: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.consumer = consumer
        self.producer = producer
        self.trainer = trainer
        self.done = done
        self.metrics = metrics
        self.poll_timeout_s = poll_timeout_s
        self.retry_pause_s = retry_pause_s
        self.dead = DeadLetters(producer, kafka, "trainer")
        self.topic = kafka.topic(topics.UPDATES)
        self.candidates_topic = kafka.topic(topics.CANDIDATES)
        self._lag_checked = 0.0

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe([self.topic])
        _log.info("consuming", topic=self.topic)
        while not stop.is_set():
            msg = self.consumer.poll(self.poll_timeout_s)
            self._update_lag()
            if msg is None:
                continue
            if msg.error():
                _log.warning("consumer_error", error=str(msg.error()))
                continue
            try:
                self.handle(msg, stop)
            except TransientError as exc:
                _log.warning("update_deferred", reason=exc.reason, detail=str(exc), offset=msg.offset())
                # Rewind so the same request comes back; nothing was committed for it.
                self.consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                stop.wait(self.retry_pause_s)

    def handle(self, msg: Message, stop: threading.Event) -> Candidate | None:
        try:
            req = decode_event(UpdateRequest, msg.value(), topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        except SerdeError as exc:
            self.metrics.dead_letters.labels(exc.reason).inc()
            _log.warning("update_request_dead_lettered", reason=exc.reason, detail=exc.detail, offset=msg.offset())
            self.dead.send(msg, exc)
            flush(self.producer)
            commit(self.consumer, [msg])
            return None
        if self.done.is_done(req.event_id):
            self.metrics.duplicates.inc()
            _log.info("duplicate_update_request", update_id=req.event_id)
            commit(self.consumer, [msg])
            return None
        stored = self.done.answer(req.event_id)
        if stored is None:
            candidate = self.trainer.process(req, stop=stop.is_set)
            stored = encode_event(candidate)
            self.done.store_answer(req.event_id, stored)
        else:
            candidate = decode_event(Candidate, stored)
        self.producer.produce(self.candidates_topic, key=req.model.encode(), value=stored)
        flush(self.producer)
        self.done.mark_done(req.event_id)
        commit(self.consumer, [msg])
        return candidate

    def _update_lag(self) -> None:
        """Pending updates = high watermark minus position over the assigned partitions (every 5 s)."""
        now = time.monotonic()
        if now - self._lag_checked < 5.0:
            return
        self._lag_checked = now
        try:
            assigned = self.consumer.assignment()
            if not assigned:
                return
            positions = self.consumer.position(assigned)
            lag = 0
            for tp in positions:
                _lo, hi = self.consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                lag += max(0, hi - tp.offset) if tp.offset >= 0 else 0
            self.metrics.pending.set(lag)
        except Exception as exc:  # a metric must never stop the loop
            _log.debug("lag_unavailable", error=str(exc))
