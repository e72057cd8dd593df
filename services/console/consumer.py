"""The event reader: a thin Kafka adapter around the timeline and accuracy cores.

Reads ``cl.drift``, ``cl.updates``, ``cl.candidates``, ``cl.deployments`` and ``cl.samples``,
applies each record to Redis (idempotently, by event id), pushes a live message, and commits
the offset only after that. Records that do not decode go to ``<topic>.dlq``; a Redis outage
retries the same record from its offset.
"""

from __future__ import annotations

import threading

import structlog
from confluent_kafka import TopicPartition
from redis.exceptions import RedisError

from services.common import kafka, topics
from services.common.errors import ModelCIError, SerdeError
from services.console.sample_offsets import SampleOffsets
from services.common.events import Candidate, DeploymentEvent, DriftEvent, LabeledSampleBatch, UpdateRequest
from services.common.serde import decode_event
from services.console.accuracy import AccuracyTracker
from services.console.live import LivePublisher
from services.console.metrics import ConsoleMetrics
from services.console.settings import ConsoleSettings
from services.console.timeline import Timeline

_log = structlog.get_logger("console.reader")

READS = {
    topics.DRIFT: DriftEvent,
    topics.UPDATES: UpdateRequest,
    topics.CANDIDATES: Candidate,
    topics.DEPLOYMENTS: DeploymentEvent,
    topics.SAMPLES: LabeledSampleBatch,
}


class EventReader:
    def __init__(self, settings: ConsoleSettings, timeline: Timeline, accuracy: AccuracyTracker, live: LivePublisher,
                 metrics: ConsoleMetrics, offsets: SampleOffsets | None = None) -> None:
        self.settings = settings
        self.timeline = timeline
        self.accuracy = accuracy
        self.live = live
        self.metrics = metrics
        self.offsets = offsets
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        """Set once the reader has its partitions, so callers (and tests) know events will be seen."""
        self._logical = {settings.kafka.topic(t): t for t in READS}
        self._thread: threading.Thread | None = None

    def handle(self, logical: str, value: bytes | None, where: dict) -> str:
        event = decode_event(READS[logical], value, **where)
        if isinstance(event, LabeledSampleBatch):
            if self.offsets is not None and where.get("partition") is not None:
                self.offsets.add(event, where["partition"], where["offset"])
            points = self.accuracy.add(event)
            if points is None:
                return "replay"
            if points:
                self.live.publish("accuracy", event.model, {"points": points})
            return "applied"
        applied = self.timeline.apply(event)
        if applied.entry is None:
            return "replay"
        self.live.publish(applied.kind, applied.model, applied.entry)
        return "applied"

    def run(self) -> None:
        k = self.settings.kafka
        producer = kafka.producer(k)
        dead = kafka.DeadLetters(producer, k, "console")
        cons = kafka.consumer(k, self.settings.group_id)
        cons.subscribe(list(self._logical), on_assign=lambda c, parts: self.ready.set())
        backoff = 0.5
        try:
            while not self.stop_event.is_set():
                batch = self._next_batch(cons)
                done, failed = self._apply_all(batch, dead, producer)
                if done:  # effects are in Redis (and dead letters acknowledged): now the offsets may move
                    kafka.commit(cons, done)
                if failed is not None:  # Redis unreachable: rewind every partition to its first unapplied record
                    rewind: dict[tuple[str, int], int] = {}
                    for msg in batch[len(done):]:
                        rewind.setdefault((msg.topic(), msg.partition()), msg.offset())
                    for (topic, partition), offset in rewind.items():
                        cons.seek(TopicPartition(topic, partition, offset))
                    _log.warning("cannot apply events, will retry", error=str(failed), records=len(batch) - len(done))
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, 8.0)
                else:
                    backoff = 0.5
        finally:
            cons.close()
            producer.flush(10)

    def _next_batch(self, cons) -> list:
        """Waits for one record, then takes what is already fetched: low latency when quiet,
        one commit per many records when busy (``consume`` alone would wait out its timeout)."""
        first = cons.poll(self.settings.poll_timeout_s)
        if first is None:
            return []
        rest = cons.consume(self.settings.max_batch - 1, 0) if self.settings.max_batch > 1 else []
        return [m for m in [first, *rest] if self._usable(m)]

    @staticmethod
    def _usable(msg) -> bool:
        if msg.error():
            _log.warning("consumer error", error=str(msg.error()))
            return False
        return True

    def _apply_all(self, batch: list, dead: kafka.DeadLetters, producer) -> tuple[list, Exception | None]:
        """Applies records in order; stops at the first one Redis could not take."""
        done = []
        parked = False
        for msg in batch:
            logical = self._logical[msg.topic()]
            where = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
            try:
                outcome = self.handle(logical, msg.value(), where)
            except SerdeError as exc:
                dead.send(msg, exc.located(msg.topic(), msg.partition(), msg.offset()))
                parked, outcome = True, "dead_letter"
                _log.warning("dead-lettered", topic=msg.topic(), offset=msg.offset(), reason=exc.reason)
            except (RedisError, OSError) as exc:
                return self._flushed(done, parked, producer), exc
            except Exception as exc:  # a bug must not wedge the partition: park the record with why
                _log.exception("unexpected failure applying an event", topic=msg.topic(), offset=msg.offset())
                err = ModelCIError(f"{type(exc).__name__}: {exc}")
                err.reason = "processing_error"
                dead.send(msg, err)
                parked, outcome = True, "dead_letter"
            self.metrics.events.labels(logical, outcome).inc()
            done.append(msg)
        return self._flushed(done, parked, producer), None

    @staticmethod
    def _flushed(done: list, parked: bool, producer) -> list:
        if parked:
            kafka.flush(producer)
        return done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_logged, name="console-reader", daemon=True)
        self._thread.start()

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            _log.exception("event reader stopped")

    def stop(self, timeout_s: float = 15.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
