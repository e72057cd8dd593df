"""Apache Avro's Java library and Apache Kafka's Java client meet the project's wire format.

A Java application using `BinaryMessageEncoder` / `BinaryMessageDecoder` (the specification's
single-object encoding) and the Java producer's default partitioner must write records the
services read, read the records the services write, and put a model's records on the partition
the project's producers pick for the same key.
"""

from __future__ import annotations

import io
import time
import uuid

import fastavro
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.common import kafka as k
from services.common.events import Feedback, FeedbackBatch, InferenceRequest
from services.common.partitioner import partition_for
from services.common.serde import HEADER_LEN, AvroSerde, decode_event, default_registry, encode_event
from services.common.settings import KafkaSettings
from tests.interop.conftest import JavaInterop, from_json_line, to_json_line
from tests.unit.avro_strategies import records

REGISTRY = default_registry()
SERDE = AvroSerde(REGISTRY)
EVENTS = sorted(REGISTRY.current)
PARTITIONS = 4
MODELS = [f"model-{i}" for i in range(12)]
JVM_PHASES = (Phase.explicit, Phase.generate)
"""No shrinking: every example starts a JVM, and a failing batch is printed whole anyway."""


def schema_file(event: str) -> str:
    return str(REGISTRY.current[event].source)


def canonical(event: str, record: dict) -> dict:
    """The record at its schema's own precision: a float travels through JSON as its shortest
    decimal, exact only once narrowed to 32 bits again. (Maps compare without order: Java's
    decoder keeps them in a hash map.)"""
    parsed = REGISTRY.current[event].parsed
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    out.seek(0)
    return fastavro.schemaless_reader(out, parsed, None)


def test_java_computes_the_header_the_project_writes(java_interop: JavaInterop):
    java = java_interop.run("fingerprint", *map(schema_file, EVENTS))
    assert dict(zip(EVENTS, java)) == {event: REGISTRY.current[event].fingerprint.hex() for event in EVENTS}


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=2, deadline=None, phases=JVM_PHASES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_java_encoder_project_reader(java_interop: JavaInterop, event: str, data: st.DataObject):
    batch = data.draw(st.lists(records(REGISTRY.current[event].raw, json_safe=True), min_size=1, max_size=12))
    parsed = REGISTRY.current[event].parsed
    lines = java_interop.run("encode", schema_file(event), stdin="\n".join(to_json_line(parsed, r) for r in batch))
    assert len(lines) == len(batch)
    for record, line in zip(batch, lines):
        assert canonical(event, SERDE.decode(event, bytes.fromhex(line))) == canonical(event, record)


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=2, deadline=None, phases=JVM_PHASES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_project_writer_java_decoder(java_interop: JavaInterop, event: str, data: st.DataObject):
    batch = data.draw(st.lists(records(REGISTRY.current[event].raw, json_safe=True), min_size=1, max_size=12))
    encoded = [SERDE.encode(event, r) for r in batch]
    legacy = encoded[0][:2] + encoded[0][2:HEADER_LEN][::-1] + encoded[0][HEADER_LEN:]
    lines = java_interop.run("decode", schema_file(event), stdin="\n".join(e.hex() for e in [*encoded, legacy]))
    assert len(lines) == len(batch) + 1
    parsed = REGISTRY.current[event].parsed
    for record, line in zip(batch, lines):
        assert not line.startswith("error:"), line
        assert canonical(event, from_json_line(parsed, line)) == canonical(event, record)
    # The byte-reversed header of releases before 2026-12 is what Java could never read.
    assert lines[-1].startswith("error: MissingSchemaException"), lines[-1]


def _consume(settings: KafkaSettings, topic: str, want: int, timeout_s: float = 60.0) -> list:
    cons = k.consumer(settings, f"interop-{uuid.uuid4().hex[:8]}")
    cons.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        cons.close()
    return got


def test_java_producer_through_the_broker_to_the_project(java_interop: JavaInterop, kafka_settings: KafkaSettings):
    """Requests and feedback from a Java producer (its default partitioner, LZ4) decode with the
    project's serde, on the partitions the project's producers choose for the same model."""
    k.ensure_topics(kafka_settings, {"inference.requests": PARTITIONS, "inference.feedback": PARTITIONS})
    requests = [InferenceRequest(request_id=f"r{i}", model=m, features=[0.25 * i, -1.5], shape=[2]) for i, m in enumerate(MODELS)]
    feedback = [FeedbackBatch(model=m, items=[Feedback(request_id=f"r{i}", label=i % 10)]) for i, m in enumerate(MODELS)]
    for event, topic, sent in (("InferenceRequest", "inference.requests", requests), ("FeedbackBatch", "inference.feedback", feedback)):
        parsed = REGISTRY.current[event].parsed
        stdin = "\n".join(f"{e.model}\t{to_json_line(parsed, e.to_record())}" for e in sent)
        java_partitions = [int(p) for p in java_interop.run("produce", kafka_settings.bootstrap_servers, kafka_settings.topic(topic), schema_file(event), stdin=stdin)]
        assert java_partitions == [partition_for(e.model, PARTITIONS) for e in sent]
        got = _consume(kafka_settings, kafka_settings.topic(topic), len(sent))
        decoded = {m.key().decode(): (m.partition(), decode_event(type(sent[0]), m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset())) for m in got}
        assert {model: part for model, (part, _) in decoded.items()} == {e.model: partition_for(e.model, PARTITIONS) for e in sent}
        assert {model: ev.to_record() for model, (_, ev) in decoded.items()} == {e.model: e.to_record() for e in sent}


def test_project_producer_through_the_broker_to_java(java_interop: JavaInterop, kafka_settings: KafkaSettings):
    """The project's producer puts each model where Java's would, and Java's decoder reads it."""
    k.ensure_topics(kafka_settings, {"inference.feedback": PARTITIONS})
    topic = kafka_settings.topic("inference.feedback")
    sent = [FeedbackBatch(model=m, items=[Feedback(request_id=f"q{i}", label=i % 10, observed_at_ms=7)]) for i, m in enumerate(MODELS)]
    prod = k.producer(kafka_settings)
    placed: dict[str, int] = {}
    for event in sent:
        prod.produce(topic, key=event.model.encode(), value=encode_event(event),
                     on_delivery=lambda err, msg: placed.__setitem__(msg.key().decode(), msg.partition()))
    k.flush(prod)
    assert placed == {m: partition_for(m, PARTITIONS) for m in MODELS}
    lines = java_interop.run("consume", kafka_settings.bootstrap_servers, topic, str(len(sent)), schema_file("FeedbackBatch"))
    parsed = REGISTRY.current["FeedbackBatch"].parsed
    got = {}
    for line in lines:
        partition, key, body = line.split("\t", 2)
        got[key] = (int(partition), from_json_line(parsed, body))
    assert {key: part for key, (part, _) in got.items()} == placed
    assert {key: rec for key, (_, rec) in got.items()} == {e.model: e.to_record() for e in sent}
