"""Reads what the services publish about the demo's model: predictions and the loop's events."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field


from services.common import kafka, topics
from services.common.errors import SerdeError
from services.common.events import Candidate, DeploymentEvent, DriftEvent, PredictionBatch, UpdateRequest, new_id
from services.common.serde import decode_event
from services.common.settings import KafkaSettings

CONTROL = {
    topics.DRIFT: DriftEvent,
    topics.UPDATES: UpdateRequest,
    topics.CANDIDATES: Candidate,
    topics.DEPLOYMENTS: DeploymentEvent,
}


@dataclass
class Answer:
    request_id: str
    label: int
    version: int
    latency_ms: float
    at: float


@dataclass
class Marker:
    kind: str
    at: float
    detail: dict = field(default_factory=dict)


class Observer(threading.Thread):
    """Collects the model's predictions and a timeline of drift, update, candidate, deployment."""

    def __init__(self, kafka_settings: KafkaSettings, model: str) -> None:
        super().__init__(name="demo-observer", daemon=True)
        self.kafka, self.model = kafka_settings, model
        self.answers: dict[str, Answer] = {}
        self.markers: list[Marker] = []
        self.events: queue.Queue[Marker] = queue.Queue()
        self._halt = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def _loop(self) -> None:
        names = {self.kafka.topic(t): t for t in (topics.PREDICTIONS, *CONTROL)}
        cons = kafka.consumer(self.kafka, f"demo-observer-{new_id()[:8]}", **{"enable.partition.eof": False})
        cons.subscribe(list(names), on_assign=lambda c, parts: self.ready.set())
        try:
            while not self._halt.is_set():
                for msg in cons.consume(500, 0.2):
                    if msg.error():
                        continue
                    self._handle(names[msg.topic()], msg)
        finally:
            cons.close()

    def _handle(self, logical: str, msg) -> None:
        try:
            if logical == topics.PREDICTIONS:
                batch = decode_event(PredictionBatch, msg.value())
                if batch.model != self.model:
                    return
                now = time.time()
                for item in batch.items:
                    self.answers.setdefault(item.request_id, Answer(item.request_id, item.label, batch.version, item.latency_ms, now))
                return
            event = decode_event(CONTROL[logical], msg.value())
        except SerdeError:
            return
        if event.model != self.model:
            return
        marker = self._marker(logical, event)
        self.markers.append(marker)
        self.events.put(marker)

    @staticmethod
    def _marker(logical: str, event) -> Marker:
        now = time.time()
        if isinstance(event, DriftEvent):
            return Marker("drift", now, {"detector": event.detector, "signal": event.signal, "version": event.version})
        if isinstance(event, UpdateRequest):
            return Marker("update", now, {"reason": event.reason, "base_version": event.base_version})
        if isinstance(event, Candidate):
            return Marker("candidate", now, {"outcome": event.outcome, "version": event.version, "reason": event.reason,
                                             "train_seconds": event.train_seconds, "metrics": event.metrics})
        return Marker(event.action, now, {"version": event.version, "previous_version": event.previous_version, "reasons": event.reasons})
