"""The client library applications use to talk to ModelCI-e: requests in, feedback in.

One `ModelCIClient` wraps one idempotent confluent-kafka producer and publishes

- `InferenceRequest` records to ``inference.requests``, one per request, keyed by model name
  (so one model's requests stay in order on one partition), and
- ground-truth labels to ``inference.feedback`` packed per model into `FeedbackBatch` records,
  keyed by model name. Feedback waits until ``feedback_batch_size`` labels of a model are
  buffered or the oldest has waited ``feedback_linger_ms``, so the drift service pays its
  per-record cost once per batch rather than once per label.

The API is synchronous and thread-safe. `flush` waits until the broker acknowledged everything
sent so far and raises `TransientError` if something could not be delivered.

    >>> with ModelCIClient(KafkaSettings()) as client:                      # doctest: +SKIP
    ...     req = client.request("iris", [5.1, 3.5, 1.4, 0.2])
    ...     client.feedback("iris", req.request_id, label=0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message

from services.common import kafka
from services.common.errors import TransientError
from services.common.events import Feedback, FeedbackBatch, InferenceRequest, new_id, now_ms
from services.common.serde import encode_event
from services.common.settings import KafkaSettings
from services.common.tensors import InputError, InputSpec, datatype_of
from services.common.topics import FEEDBACK, REQUESTS


class ModelCIClient:
    def __init__(
        self,
        kafka_settings: KafkaSettings | None = None,
        *,
        feedback_batch_size: int = 500,
        feedback_linger_ms: float = 200.0,
        producer: Any = None,
        **producer_config: Any,
    ) -> None:
        """``producer`` replaces the Kafka producer (anything with confluent-kafka's
        ``produce``/``poll``/``flush``); ``producer_config`` adds librdkafka settings."""
        if feedback_batch_size < 1:
            raise ValueError("feedback_batch_size must be at least 1")
        self.kafka = kafka_settings or KafkaSettings()
        self.feedback_batch_size = feedback_batch_size
        self.feedback_linger_s = feedback_linger_ms / 1000
        self.requests_topic = self.kafka.topic(REQUESTS)
        self.feedback_topic = self.kafka.topic(FEEDBACK)
        self._producer = producer if producer is not None else kafka.producer(self.kafka, **producer_config)
        self._lock = threading.Lock()
        self._buffers: dict[str, list[Feedback]] = {}
        self._first_at: dict[str, float] = {}
        self._errors: list[str] = []
        self._closed = threading.Event()
        self._wakeup = threading.Event()
        self._linger = threading.Thread(target=self._linger_loop, name="modelci-feedback-linger", daemon=True)
        self._linger.start()

    # --- requests -------------------------------------------------------------------------------
    def request(
        self,
        model: str,
        features: Sequence[float] | Any,
        *,
        shape: Sequence[int] | None = None,
        version: int | None = None,
        request_id: str | None = None,
        datatype: str | None = None,
        key: str | None = None,
    ) -> InferenceRequest:
        """Publishes one request; returns it (its ``request_id`` is what feedback refers to).

        ``features`` is a flat sequence or an array (numpy, torch): an array's shape is taken
        as the input shape unless ``shape`` is given; a flat sequence defaults to ``[len]``.
        ``datatype`` is the model's input datatype (FP32, FP16, INT64, INT32); by default an
        integer array (numpy or torch: token ids) is INT64 or INT32 as its dtype says, an FP16
        array FP16, anything else (plain sequences included) FP32. A
        value that does not fit raises `InputError` here, before anything is sent.
        ``key`` is the Kafka key, the model name by default (one model's requests then share
        one partition, hence one worker); pass e.g. the request id to spread a busy model over
        every partition and worker."""
        values = features.detach().cpu().numpy() if hasattr(features, "detach") else np.asarray(features)
        if shape is None:
            shape = values.shape or (values.size,)
        default = _default_datatype(values) if hasattr(features, "dtype") else "FP32"
        spec = InputSpec(tuple(int(d) for d in shape), datatype or default)
        flat, ints = spec.fields(values)
        req = InferenceRequest(
            request_id=request_id or new_id(),
            model=model,
            features=flat,
            int_features=ints,
            shape=list(spec.shape),
            version=version,
            datatype=spec.datatype,
        )
        self._produce(self.requests_topic, key or model, encode_event(req))
        return req

    # --- feedback -------------------------------------------------------------------------------
    def feedback(self, model: str, request_id: str, label: int, observed_at_ms: int | None = None) -> None:
        """Buffers the true label of an earlier request; sent in a `FeedbackBatch` of its model."""
        item = Feedback(request_id=request_id, label=int(label), observed_at_ms=observed_at_ms or now_ms())
        with self._lock:
            buf = self._buffers.setdefault(model, [])
            started = not buf
            if started:
                self._first_at[model] = time.monotonic()
            buf.append(item)
            batch = self._take(model) if len(buf) >= self.feedback_batch_size else None
        if batch is not None:
            self._send(batch)
        elif started:
            self._wakeup.set()  # a new linger deadline for the background sender

    def _take(self, model: str) -> FeedbackBatch | None:
        """Removes a model's buffered feedback as one batch (call with the lock held)."""
        items = self._buffers.pop(model, None)
        self._first_at.pop(model, None)
        return FeedbackBatch(model=model, items=items) if items else None

    def _send(self, batch: FeedbackBatch) -> None:
        self._produce(self.feedback_topic, batch.model, encode_event(batch))

    def _send_expired(self, now: float) -> float | None:
        """Sends batches whose linger ran out; returns seconds until the next one expires."""
        with self._lock:
            expired = [m for m, at in self._first_at.items() if now - at >= self.feedback_linger_s]
            batches = [b for b in (self._take(m) for m in expired) if b is not None]
            nxt = min(self._first_at.values(), default=None)
        for batch in batches:
            self._send(batch)
        return None if nxt is None else max(nxt + self.feedback_linger_s - now, 0.0)

    def _linger_loop(self) -> None:
        while not self._closed.is_set():
            self._wakeup.clear()  # before looking, so that a deadline added meanwhile wakes us
            wait = self._send_expired(time.monotonic())
            self._producer.poll(0)
            self._wakeup.wait(timeout=0.5 if wait is None else min(wait, 0.5))

    # --- delivery -------------------------------------------------------------------------------
    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, on_delivery=self._delivered)
                break
            except BufferError:  # local queue full: wait for deliveries
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            with self._lock:
                self._errors.append(f"{msg.topic()}: {err}")

    def flush(self, timeout_s: float = 30.0) -> None:
        """Sends all buffered feedback and waits until the broker acknowledged everything."""
        with self._lock:
            batches = [b for b in (self._take(m) for m in list(self._buffers)) if b is not None]
        for batch in batches:
            self._send(batch)
        kafka.flush(self._producer, timeout_s)
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise TransientError(f"{len(errors)} records were not delivered; first: {errors[0]}")

    def close(self, timeout_s: float = 30.0) -> None:
        """Flushes, then stops the linger thread."""
        try:
            self.flush(timeout_s)
        finally:
            self._closed.set()
            self._wakeup.set()
            self._linger.join(timeout=5)

    def __enter__(self) -> "ModelCIClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_datatype(values: np.ndarray) -> str:
    """The array's own datatype when it is one a model takes; other integers are INT64 ids,
    anything else (float64 above all) FP32."""
    try:
        return datatype_of(values)
    except InputError:
        return "INT64" if np.issubdtype(values.dtype, np.integer) else "FP32"
