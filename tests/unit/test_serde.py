"""Every event schema round-trips, older writers are resolved, and bad bytes fail loudly."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import RELEASED_DIR
from services.common.errors import SerdeError
from services.common.events import EVENT_CLASSES, FeedbackBatch, Feedback, InferenceRequest
from services.common.serde import (
    HEADER_LEN,
    LEGACY_HEADERS,
    AvroSerde,
    SchemaRegistry,
    decode_event,
    default_registry,
    encode_event,
    load_schema_file,
    schema_fingerprint,
)
from tests.unit.avro_strategies import records

REGISTRY = default_registry()
SERDE = AvroSerde(REGISTRY)
EVENTS = sorted(REGISTRY.current)


def test_every_event_has_a_schema_and_a_typed_class():
    assert set(EVENTS) == set(EVENT_CLASSES)
    assert len(EVENTS) >= 9


def test_every_field_is_documented():
    def walk(schema, path):
        if isinstance(schema, dict) and schema.get("type") == "record":
            assert schema.get("doc"), f"{path} has no doc"
            for field in schema["fields"]:
                assert field.get("doc"), f"{path}.{field['name']} has no doc"
                walk(field["type"], f"{path}.{field['name']}")
        elif isinstance(schema, dict) and schema.get("type") == "array":
            walk(schema["items"], path)
        elif isinstance(schema, list):
            for branch in schema:
                walk(branch, path)

    for name in EVENTS:
        walk(REGISTRY.current[name].raw, name)


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_generated_records(event, data):
    record = data.draw(records(REGISTRY.current[event].raw))
    encoded = SERDE.encode(event, record)
    assert encoded[:2] == b"\xc3\x01"
    assert SERDE.decode(event, encoded) == record


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_typed_events_round_trip(event, data):
    cls = EVENT_CLASSES[event]
    record = data.draw(records(REGISTRY.current[event].raw))
    typed = cls.from_record(record)
    again = decode_event(cls, encode_event(typed))
    assert again.to_record() == typed.to_record()


def test_defaults_fill_omitted_optional_fields():
    req = InferenceRequest(request_id="r1", model="digits", features=[0.5, 1.5], shape=[2])
    decoded = SERDE.decode("InferenceRequest", encode_event(req))
    assert decoded["version"] is None and decoded["datatype"] == "FP32"


def _good() -> bytes:
    return encode_event(FeedbackBatch(model="m", items=[Feedback(request_id="r", label=3)]))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"garbage bytes that are not avro", "bad_marker"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown_schema"),
        (_good()[:-4], "truncated"),
        (_good() + b"\x00\x01", "trailing_bytes"),
        (encode_event(InferenceRequest(request_id="r", model="m", features=[1.0], shape=[1])), "wrong_schema"),
    ],
    ids=["empty", "garbage", "unknown-fingerprint", "truncated", "trailing", "other-schema"],
)
def test_bad_input_raises_one_typed_error_with_location(data, reason):
    with pytest.raises(SerdeError) as info:
        SERDE.decode("FeedbackBatch", data, topic="inference.feedback", partition=2, offset=41)
    err = info.value
    assert err.reason == reason
    assert (err.topic, err.partition, err.offset) == ("inference.feedback", 2, 41)
    assert "inference.feedback[2]@41" in str(err)


def test_invalid_record_is_refused_at_encode_time():
    with pytest.raises(SerdeError) as info:
        SERDE.encode("FeedbackBatch", {"event_id": "x", "model": "m", "sent_at_ms": 1, "items": [{"label": 1}]})
    assert info.value.reason == "invalid_record"


def test_reader_resolves_records_of_an_older_writer(tmp_path):
    """A consumer on a newer schema reads data produced with the released one."""
    old = json.loads(REGISTRY.current["FeedbackBatch"].source.read_text())
    new = json.loads(json.dumps(old))
    new["fields"].append({"name": "source", "type": "string", "default": "app", "doc": "Who sent it."})
    (tmp_path / "current").mkdir()
    (tmp_path / "released" / "v1").mkdir(parents=True)
    (tmp_path / "current" / "feedback.avsc").write_text(json.dumps(new))
    (tmp_path / "released" / "v1" / "feedback.avsc").write_text(json.dumps(old))
    old_bytes = _good()
    newer = AvroSerde(SchemaRegistry(tmp_path / "current", tmp_path / "released"))
    decoded = newer.decode("FeedbackBatch", old_bytes)
    assert decoded["source"] == "app"
    assert decoded["items"][0]["label"] == 3


def test_header_fingerprint_is_the_specifications_little_endian_crc64():
    """The Avro specification's test vector: CRC-64-AVRO of ``"null"`` is 0x63dd24e7cc258f8a."""
    assert schema_fingerprint("null") == (0x63DD24E7CC258F8A).to_bytes(8, "little") == bytes.fromhex("8a8f25cce724dd63")
    # The value a Java or Node producer following the specification writes for InferenceRequest
    # v1 (what Apache Avro's Java library wrote in the interop check of 2026-12).
    v1 = load_schema_file(RELEASED_DIR / "v1" / "inference_request.avsc")
    assert v1.fingerprint.hex() == "6f890c5472c4dfeb"
    assert REGISTRY.by_fingerprint[v1.fingerprint].short_name == "InferenceRequest"


def _metric(event: str) -> float:
    return LEGACY_HEADERS.labels(event)._value.get()


def test_records_with_the_pre_2026_12_reversed_header_stay_readable_and_are_counted():
    good = _good()
    legacy = good[:2] + good[2:HEADER_LEN][::-1] + good[HEADER_LEN:]
    before = _metric("FeedbackBatch")
    assert SERDE.decode("FeedbackBatch", legacy) == SERDE.decode("FeedbackBatch", good)
    assert _metric("FeedbackBatch") == before + 1
    SERDE.decode("FeedbackBatch", good)
    assert _metric("FeedbackBatch") == before + 1, "a spec-conformant record counted as legacy"
    # What the project writes is never the legacy form.
    version = REGISTRY.current["FeedbackBatch"]
    assert good[2:HEADER_LEN] == version.fingerprint != version.fingerprint[::-1]


def test_every_service_exports_the_legacy_header_counter():
    from prometheus_client import CollectorRegistry, generate_latest

    from services.common.metrics import with_shared

    registry = with_shared(with_shared(CollectorRegistry()))  # twice: idempotent
    assert b"modelci_serde_legacy_header_records_total" in generate_latest(registry)
