"""Apache Avro's own Python implementation and the project read each other's records.

The reference side frames records as the specification says (``C3 01``, the schema's
``fingerprint("CRC-64-AVRO")``, the binary body) with no help from the project's code, so a
header the project writes differently from the specification fails here.
"""

from __future__ import annotations

import io
import random

import avro.io
import avro.schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.serde import AvroSerde, default_registry
from services.drift.columns import BatchReader, _feedback_from
from tests.drift.test_columns import prediction_batch, same_predictions
from tests.unit.avro_strategies import records

REGISTRY = default_registry()
SERDE = AvroSerde(REGISTRY)
EVENTS = sorted(REGISTRY.current)
SCHEMAS = {event: avro.schema.parse(REGISTRY.current[event].source.read_text()) for event in EVENTS}


def reference_encode(event: str, record: dict) -> bytes:
    schema = SCHEMAS[event]
    out = io.BytesIO()
    out.write(b"\xc3\x01" + schema.fingerprint("CRC-64-AVRO"))
    avro.io.DatumWriter(schema).write(record, avro.io.BinaryEncoder(out))
    return out.getvalue()


def reference_decode(event: str, data: bytes) -> dict:
    schema = SCHEMAS[event]
    assert data[:2] == b"\xc3\x01", data[:2]
    assert data[2:10] == schema.fingerprint("CRC-64-AVRO"), f"header {data[2:10].hex()} names no schema Avro knows as {event}"
    return avro.io.DatumReader(schema, schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))


def test_both_compute_the_same_header_for_every_schema():
    assert {e: REGISTRY.current[e].fingerprint for e in EVENTS} == {e: SCHEMAS[e].fingerprint("CRC-64-AVRO") for e in EVENTS}


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reference_writer_project_reader(event, data):
    record = data.draw(records(REGISTRY.current[event].raw))
    assert SERDE.decode(event, reference_encode(event, record)) == record


@pytest.mark.parametrize("event", EVENTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_project_writer_reference_reader(event, data):
    record = data.draw(records(REGISTRY.current[event].raw))
    assert reference_decode(event, SERDE.encode(event, record)) == record


@pytest.mark.parametrize("seed", range(5))
def test_the_drift_scanner_reads_reference_records_itself(seed: int):
    """The compiled reader takes spec-conformant records (no fallback to the serde)."""
    fell_back: list[str] = []
    fast = BatchReader(SERDE, on_fallback=fell_back.append)
    slow = BatchReader(SERDE, fast=False)
    rng = random.Random(seed)
    batch = prediction_batch(rng, [f"r{seed}-{i}" for i in range(rng.randrange(1, 30))], rng.randrange(0, 20), seed)
    data = reference_encode("PredictionBatch", batch)
    same_predictions(fast.predictions(data, 3, 11), slow.predictions(data, 3, 11))
    feedback = {"event_id": "f", "model": batch["model"], "sent_at_ms": 5,
                "items": [{"request_id": it["request_id"], "label": rng.randrange(10), "observed_at_ms": 7} for it in batch["items"]]}
    data = reference_encode("FeedbackBatch", feedback)
    scanned, generic = fast.feedback(data, 0, 0), _feedback_from(SERDE.decode("FeedbackBatch", data), 0, 0)
    assert (scanned.model, scanned.n, scanned.ids, scanned.labels.tolist()) == (generic.model, generic.n, generic.ids, generic.labels.tolist())
    assert fell_back == []


def test_the_cli_prints_the_headers_a_reference_writer_uses():
    import json

    from typer.testing import CliRunner

    from services.cli.main import app

    result = CliRunner().invoke(app, ["schemas", "headers", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {e: (b"\xc3\x01" + SCHEMAS[e].fingerprint("CRC-64-AVRO")).hex() for e in EVENTS}
