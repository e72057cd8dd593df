"""Synthetic prediction and feedback traffic, published the way the real producers publish it.

Predictions go to ``inference.predictions`` as `PredictionBatch` records (one per micro-batch,
as the inference service publishes them) and labels to ``inference.feedback`` as
`FeedbackBatch` records (as the client library packs them), both keyed by model name.

The model's error rate can switch at known event indexes: ``schedule`` lists (first index,
error rate) pairs; ``error_before``/``error_after``/``switch_at`` are the one-switch shorthand.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Producer

from services.common.events import Feedback, FeedbackBatch, Prediction, PredictionBatch
from services.common.kafka import flush
from services.common.serde import encode_event
from services.common.settings import KafkaSettings
from services.common.topics import FEEDBACK, PREDICTIONS


@dataclass
class Traffic:
    """A deterministic stream of predictions and their true labels for one model."""

    model: str
    events: int
    version: int = 1
    n_features: int = 16
    n_classes: int = 4
    error_before: float = 0.05
    error_after: float = 0.05
    switch_at: int | None = None
    seed: int = 0
    id_prefix: str = ""
    schedule: tuple[tuple[int, float], ...] = ()

    def error_at(self, i: int) -> float:
        if self.schedule:
            rate = self.schedule[0][1]
            for start, error in self.schedule:
                if i >= start:
                    rate = error
            return rate
        return self.error_after if self.switch_at is not None and i >= self.switch_at else self.error_before

    def request_id(self, i: int) -> str:
        return f"{self.id_prefix}{self.model}-{i:09d}"

    def predictions(self) -> Iterator[Prediction]:
        rng = random.Random(f"p{self.seed}")
        for i in range(self.events):
            scores = [rng.random() for _ in range(self.n_classes)]
            total = sum(scores)
            scores = [s / total for s in scores]
            label = max(range(self.n_classes), key=scores.__getitem__)
            yield Prediction(
                request_id=self.request_id(i),
                features=[rng.gauss(0.0, 1.0) for _ in range(self.n_features)],
                scores=scores,
                label=label,
                confidence=scores[label],
                latency_ms=1.0,
                requested_at_ms=0,
            )

    def labels(self) -> Iterator[tuple[str, int, int]]:
        """(request id, true label, predicted label) per event, in event order."""
        prng = random.Random(f"p{self.seed}")
        lrng = random.Random(f"l{self.seed}")
        for i in range(self.events):
            scores = [prng.random() for _ in range(self.n_classes)]
            for _ in range(self.n_features):
                prng.gauss(0.0, 1.0)
            predicted = max(range(self.n_classes), key=scores.__getitem__)
            if lrng.random() < self.error_at(i):
                label = (predicted + 1 + lrng.randrange(self.n_classes - 1)) % self.n_classes
            else:
                label = predicted
            yield self.request_id(i), label, predicted


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TrafficPublisher:
    """Publishes `Traffic` as prediction and feedback batches."""

    def __init__(self, kafka: KafkaSettings, producer: Producer | None = None) -> None:
        from services.common.kafka import producer as make_producer

        self.kafka = kafka
        self.producer = producer or make_producer(kafka, **{"linger.ms": 20})

    def predictions(self, model: str, version: int, items: list[Prediction]) -> None:
        batch = PredictionBatch(model=model, version=version, items=items)
        self._send(PREDICTIONS, model, encode_event(batch))

    def feedback(self, model: str, items: list[tuple[str, int]]) -> None:
        batch = FeedbackBatch(model=model, items=[Feedback(request_id=r, label=lab) for r, lab in items])
        self._send(FEEDBACK, model, encode_event(batch))

    def raw(self, logical_topic: str, model: str, value: bytes) -> None:
        self._send(logical_topic, model, value)

    def _send(self, logical: str, model: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.kafka.topic(logical), key=model.encode(), value=value)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def interleaved(self, traffic: Traffic, batch: int = 100, lag_batches: int = 0, start: int = 0, stop: int | None = None) -> int:
        """Publishes prediction batch k, then the feedback of batch k - ``lag_batches``.

        ``start``/``stop`` select a slice of batches (to publish a stream in parts). Returns
        the number of events published on each topic.
        """
        preds = list(traffic.predictions())
        labels = [(rid, label) for rid, label, _ in traffic.labels()]
        pred_batches = list(chunks(preds, batch))
        label_batches = list(chunks(labels, batch))
        n = len(pred_batches)
        stop = n if stop is None else min(stop, n)
        sent = 0
        for k in range(start, stop + lag_batches):
            if k < stop:
                self.predictions(traffic.model, traffic.version, pred_batches[k])
                sent += len(pred_batches[k])
            j = k - lag_batches
            if start <= j < stop:
                self.feedback(traffic.model, label_batches[j])
        return sent

    def flush(self, timeout_s: float = 60.0) -> None:
        flush(self.producer, timeout_s)
