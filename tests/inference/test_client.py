"""The client library: request records and feedback batches, keys and schemas."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from confluent_kafka import KafkaError

from services.common.client import ModelCIClient
from services.common.errors import TransientError
from services.common.events import FeedbackBatch, InferenceRequest
from services.common.serde import decode_event
from services.common.settings import KafkaSettings
from services.common.tensors import InputError


class FakeProducer:
    """Records what is produced; acknowledges (or fails) on poll/flush like confluent-kafka."""

    def __init__(self, error: KafkaError | None = None) -> None:
        self.error = error
        self.sent: list[tuple[str, bytes, bytes]] = []
        self._waiting: list = []

    def produce(self, topic, key=None, value=None, on_delivery=None):
        self.sent.append((topic, key, value))
        self._waiting.append((on_delivery, _Msg(topic)))

    def poll(self, timeout=0):
        waiting, self._waiting = self._waiting, []
        for callback, msg in waiting:
            callback(self.error, msg)
        return len(waiting)

    def flush(self, timeout=None):
        self.poll()
        return 0


class _Msg:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


@pytest.fixture
def kafka() -> KafkaSettings:
    return KafkaSettings(topic_prefix="app.")


def test_requests_are_keyed_by_model_and_take_the_arrays_shape(kafka):
    producer = FakeProducer()
    with ModelCIClient(kafka, producer=producer) as client:
        req = client.request("iris", np.arange(6, dtype=np.float32).reshape(2, 3), version=2)
        flat = client.request("iris", [1, 2, 3], request_id="mine")
    (topic, key, value), (_, _, value2) = producer.sent
    assert topic == "app.inference.requests" and key == b"iris"
    decoded = decode_event(InferenceRequest, value)
    assert decoded.request_id == req.request_id and decoded.shape == [2, 3] and decoded.version == 2
    assert decoded.features == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert decode_event(InferenceRequest, value2).shape == [3] and flat.request_id == "mine"
    assert decode_event(InferenceRequest, value2).datatype == "FP32"  # a plain list of ints is a float input


def test_token_id_arrays_travel_as_int_features_in_their_datatype(kafka):
    producer = FakeProducer()
    with ModelCIClient(kafka, producer=producer) as client:
        client.request("text", np.array([5, 2**40, 0, 0], dtype=np.int64))
        client.request("text32", torch.tensor([1, 2, 0], dtype=torch.int32))
        client.request("half", np.ones((1, 2, 2), dtype=np.float16))
        with pytest.raises(InputError, match="non-integer"):
            client.request("text", [0.5, 1.0], datatype="INT64")
        with pytest.raises(InputError, match="shape"):
            client.request("text", np.zeros(4, np.int64), shape=[5])
    ids, ids32, half = (decode_event(InferenceRequest, value) for _, _, value in producer.sent)
    assert (ids.datatype, ids.int_features, ids.features, ids.shape) == ("INT64", [5, 2**40, 0, 0], [], [4])
    assert (ids32.datatype, ids32.int_features) == ("INT32", [1, 2, 0])
    assert (half.datatype, half.features, half.shape) == ("FP16", [1.0] * 4, [1, 2, 2])


def test_feedback_is_packed_per_model_by_size_and_on_flush(kafka):
    producer = FakeProducer()
    client = ModelCIClient(kafka, producer=producer, feedback_batch_size=3, feedback_linger_ms=60_000)
    for i in range(7):
        client.feedback("a", f"a{i}", label=i % 2)
    client.feedback("b", "b0", label=1)
    assert [decode_event(FeedbackBatch, v).model for _, _, v in producer.sent] == ["a", "a"]  # two full batches
    client.close()
    batches = [(t, k, decode_event(FeedbackBatch, v)) for t, k, v in producer.sent]
    assert {t for t, _, _ in batches} == {"app.inference.feedback"}
    assert [(k, [f.request_id for f in b.items]) for _, k, b in batches] == [
        (b"a", ["a0", "a1", "a2"]),
        (b"a", ["a3", "a4", "a5"]),
        (b"a", ["a6"]),
        (b"b", ["b0"]),
    ]
    assert batches[0][2].items[1].label == 1


def test_feedback_is_sent_when_its_linger_expires(kafka):
    producer = FakeProducer()
    client = ModelCIClient(kafka, producer=producer, feedback_batch_size=1000, feedback_linger_ms=50)
    try:
        client.feedback("a", "r1", label=2)
        deadline = time.monotonic() + 5
        while not producer.sent:
            assert time.monotonic() < deadline, "lingering feedback was never sent"
            time.sleep(0.01)
        assert [f.request_id for f in decode_event(FeedbackBatch, producer.sent[0][2]).items] == ["r1"]
    finally:
        client.close()


def test_flush_raises_when_the_broker_did_not_take_a_record(kafka):
    client = ModelCIClient(kafka, producer=FakeProducer(error=KafkaError(KafkaError._MSG_TIMED_OUT)))
    client.request("iris", [1.0])
    with pytest.raises(TransientError, match="not delivered"):
        client.flush()
    client.close()
