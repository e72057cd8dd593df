"""The compiled batch reader gives what the serde gives, and never reads past a bad record."""

from __future__ import annotations

import io
import random
import struct

import fastavro
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.errors import SerdeError
from schemas import RELEASED_DIR
from services.common.serde import MARKER, default_serde, load_schema_file
from services.drift import samples as S
from services.drift import scan
from services.drift.columns import SCANNED, BatchReader, _feedback_from, _predictions_from
from services.drift.join import PRED_HEAD, pack_prediction, unpack_prediction


def reference_decode(event: str, data: bytes) -> dict:
    """``data`` read by Apache Avro's own Python implementation (header checked against the
    fingerprint it computes itself)."""
    import avro.io
    import avro.schema

    schema = avro.schema.parse(default_serde().registry.get(event).source.read_text())
    assert data[:2] == MARKER and data[2:10] == schema.fingerprint("CRC-64-AVRO")
    body = io.BytesIO(data[10:])
    record = avro.io.DatumReader(schema, schema).read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(data) - 10
    return record


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40)


EDGE_IDS = (0, 1, -1, 63, 64, -65, 2**31, 2**40, -(2**40), 2**62, 2**63 - 1, -(2**63))
"""Token ids whose varints take 1 to 10 bytes, int64's extremes included."""


def token_ids(rng: random.Random, n: int) -> list[int]:
    return [rng.choice(EDGE_IDS) if rng.random() < 0.3 else rng.randrange(-(2**20), 2**20) for _ in range(n)]


def prediction_batch(rng: random.Random, rids: list[str], n_features: int, version: int, n_int: int = 0) -> dict:
    """A batch of a floating-point model (``n_features``) or an integer one (``n_int`` token ids)."""
    items = []
    for rid in rids:
        scores = [f32(rng.random()) for _ in range(rng.randrange(0, 5))]
        items.append(
            {
                "request_id": rid,
                "features": [f32(rng.uniform(-1e3, 1e3)) for _ in range(n_features)],
                "int_features": token_ids(rng, n_int),
                "scores": scores,
                "label": rng.randrange(-5, 500),
                "confidence": f32(rng.random()),
                "latency_ms": 1.5,
                "requested_at_ms": rng.randrange(0, 2**41),
            }
        )
    return {"event_id": "e", "model": "m-é" if rng.random() < 0.5 else "model", "version": version, "produced_at_ms": 1, "items": items}


def same_predictions(a, b) -> None:
    assert (a.model, a.version, a.n, a.ids, a.values) == (b.model, b.version, b.n, b.ids, b.values)
    assert [a.sample_id(k) for k in range(a.n)] == [b.sample_id(k) for k in range(b.n)]
    assert a.labels.tolist() == b.labels.tolist()
    assert a.confidence.tolist() == b.confidence.tolist()
    assert a.means.tolist() == b.means.tolist()


@settings(max_examples=60, deadline=None)
@given(
    rids=st.lists(ids, max_size=60),
    n_features=st.integers(0, 40),
    n_int=st.integers(0, 40),
    version=st.integers(0, 2**40),
    seed=st.integers(0, 10**6),
    partition=st.integers(0, 200),
    offset=st.integers(0, 2**50),
)
def test_scanned_predictions_equal_the_serde_path(rids: list[str], n_features: int, n_int: int, version: int, seed: int, partition: int, offset: int) -> None:
    serde = default_serde()
    batch = prediction_batch(random.Random(seed), rids, n_features, version, n_int)
    data = serde.encode("PredictionBatch", batch)
    scanned = BatchReader(serde)._scan_predictions(data, partition, offset)
    assert scanned is not None
    same_predictions(scanned, _predictions_from(serde.decode("PredictionBatch", data), partition, offset))
    for k, item in enumerate(batch["items"]):
        assert scanned.value(k) == pack_prediction(version, partition, offset, item["label"], item["confidence"], item["features"], item["int_features"])


def test_the_input_signal_of_an_integer_model_is_the_mean_of_its_ids() -> None:
    """Features win when present; an integer model's mean is its token ids' (as float64, no
    overflow at int64's extremes); no input at all gives 0.0, never NaN."""
    serde = default_serde()
    batch = prediction_batch(random.Random(2), ["f", "i", "none", "big"], 0, 1)
    batch["items"][0]["features"] = [1.0, 2.0]
    batch["items"][0]["int_features"] = [100]
    batch["items"][1]["int_features"] = [3, 4, 8]
    batch["items"][3]["int_features"] = [2**63 - 1, 2**63 - 1, -(2**63)]
    data = serde.encode("PredictionBatch", batch)
    scanned = BatchReader(serde)._scan_predictions(data, 0, 0)
    assert scanned is not None
    assert scanned.means.tolist() == [1.5, 5.0, 0.0, float(2**63) / 3]
    assert _predictions_from(serde.decode("PredictionBatch", data), 0, 0).means.tolist() == scanned.means.tolist()


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.tuples(ids, st.integers(-(2**31), 2**31 - 1)), max_size=80))
def test_scanned_feedback_equals_the_serde_path(labels: list[tuple[str, int]]) -> None:
    serde = default_serde()
    batch = {"event_id": "e", "model": "m", "sent_at_ms": 5, "items": [{"request_id": r, "label": lab, "observed_at_ms": 9} for r, lab in labels]}
    data = serde.encode("FeedbackBatch", batch)
    scanned = BatchReader(serde)._scan_feedback(data)
    assert scanned is not None
    generic = _feedback_from(serde.decode("FeedbackBatch", data), 0, 0)
    assert (scanned.model, scanned.n, scanned.ids, scanned.labels_text) == (generic.model, generic.n, generic.ids, generic.labels_text)
    assert scanned.labels.tolist() == [lab for _, lab in labels]
    assert [scanned.sample_id(k) for k in range(scanned.n)] == [generic.sample_id(k) for k in range(generic.n)]


@pytest.mark.parametrize("n_features,n_int", [(4, 0), (0, 6)], ids=["float-model", "integer-model"])
def test_every_truncation_and_corruption_ends_in_a_status_or_the_serdes_error(n_features: int, n_int: int) -> None:
    serde = default_serde()
    reader = BatchReader(serde)
    data = serde.encode("PredictionBatch", prediction_batch(random.Random(1), [f"r{i}" for i in range(5)], n_features, 3, n_int))
    for cut in range(len(data)):
        with pytest.raises(SerdeError) as err:
            reader.predictions(data[:cut], 0, 0)
        assert err.value.reason in ("empty", "bad_marker", "truncated", "corrupt")
    rng = random.Random(7)
    for _ in range(300):  # random byte flips after the header: a result equal to the serde's, or its error
        broken = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            broken[rng.randrange(10, len(data))] = rng.randrange(256)
        try:
            expected = _predictions_from(serde.decode("PredictionBatch", bytes(broken)), 0, 0)
        except SerdeError as exc:
            with pytest.raises(SerdeError) as err:
                reader.predictions(bytes(broken), 0, 0)
            assert err.value.reason == exc.reason
        else:
            same_predictions(reader.predictions(bytes(broken), 0, 0), expected)


def _java_style(serde, batch: dict) -> bytes:
    """The same batch with every array written as blocks of 2 items with byte sizes (a negative
    count, as Java's BlockingBinaryEncoder writes them): valid Avro the scanner leaves to the serde."""
    version = serde.registry.get("PredictionBatch")
    out = io.BytesIO()
    out.write(MARKER + version.fingerprint)

    def long(n: int) -> None:
        fastavro.schemaless_writer(out, "long", n)

    def string(text: str) -> None:
        fastavro.schemaless_writer(out, "string", text)

    def floats(values: list[float]) -> None:
        for i in range(0, len(values), 2):
            chunk = values[i : i + 2]
            long(-len(chunk))
            long(4 * len(chunk))
            for v in chunk:
                out.write(struct.pack("<f", v))
        long(0)

    def longs(values: list[int]) -> None:
        for i in range(0, len(values), 2):
            chunk = b"".join(S.varint(v) for v in values[i : i + 2])
            long(-len(values[i : i + 2]))
            long(len(chunk))
            out.write(chunk)
        long(0)

    string(batch["event_id"])
    string(batch["model"])
    long(batch["version"])
    long(batch["produced_at_ms"])
    items = batch["items"]
    for i in range(0, len(items), 2):
        long(len(items[i : i + 2]))
        for it in items[i : i + 2]:
            string(it["request_id"])
            floats(it["features"])
            longs(it["int_features"])
            floats(it["scores"])
            long(it["label"])
            out.write(struct.pack("<ff", it["confidence"], it["latency_ms"]))
            long(it["requested_at_ms"])
    long(0)
    return out.getvalue()


def test_valid_encodings_the_scanner_does_not_take_are_read_by_the_serde() -> None:
    serde = default_serde()
    fallbacks: list[str] = []
    reader = BatchReader(serde, on_fallback=fallbacks.append)
    batch = prediction_batch(random.Random(3), ["a", "b", "c", "ü-non-ascii"], 5, 2, 3)
    java = _java_style(serde, batch)
    assert serde.decode("PredictionBatch", java) == serde.decode("PredictionBatch", serde.encode("PredictionBatch", batch))
    assert reader._scan_predictions(java, 0, 0) is None  # multi-block features: not scanned
    same_predictions(reader.predictions(java, 1, 2), _predictions_from(serde.decode("PredictionBatch", java), 1, 2))
    non_ascii = serde.encode("PredictionBatch", batch)
    assert reader._scan_predictions(non_ascii, 0, 0) is None
    assert reader.predictions(non_ascii, 0, 0).n == 4
    assert fallbacks == ["PredictionBatch", "PredictionBatch"]
    plain = serde.encode("PredictionBatch", prediction_batch(random.Random(4), ["a", "b"], 3, 1))
    assert reader.predictions(plain, 0, 0).n == 2 and len(fallbacks) == 2  # scanned: not counted


def test_a_request_id_longer_than_the_join_accepts_is_a_clear_error() -> None:
    serde = default_serde()
    data = serde.encode("FeedbackBatch", {"event_id": "e", "model": "m", "sent_at_ms": 0, "items": [{"request_id": "x" * 70000, "label": 1, "observed_at_ms": 0}]})
    with pytest.raises(SerdeError) as err:
        BatchReader(serde).feedback(data, 0, 0)
    assert err.value.reason == "request_id_too_long"


def old_packed(version: int, partition: int, offset: int, predicted: int, confidence: float, features: list[float]) -> bytes:
    """A packed prediction as workers before schema v2 stored it: head and features block only."""
    return PRED_HEAD.pack(version, partition, offset, predicted, confidence) + S.features_from_list(features)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), n_features=st.integers(0, 20), n_int=st.integers(0, 20), seed=st.integers(0, 10**6), fpart=st.integers(0, 100), foff=st.integers(0, 2**45))
def test_feedback_samples_are_fastavros_labeled_samples(n: int, n_features: int, n_int: int, seed: int, fpart: int, foff: int) -> None:
    """Including predictions packed by an older worker (no int_features block): still in Redis
    after an upgrade, they give samples with empty int_features."""
    serde = default_serde()
    rng = random.Random(seed)
    rids = [f"rid-{i}" for i in range(n)]
    fb = serde.encode("FeedbackBatch", {"event_id": "e", "model": "m", "sent_at_ms": 0, "items": [{"request_id": r, "label": rng.randrange(0, 9), "observed_at_ms": 0} for r in rids]})
    cols = BatchReader(serde)._scan_feedback(fb)
    joined = sorted(rng.sample(range(n), rng.randrange(1, n + 1)))
    preds, blobs = [], []
    for k in joined:
        feats = [f32(rng.uniform(-5, 5)) for _ in range(n_features)]
        head = (rng.randrange(0, 2**40), rng.randrange(0, 64), rng.randrange(0, 2**45), rng.randrange(0, 9), f32(rng.random()))
        if rng.random() < 0.3:
            preds.append((*head, feats, []))
            blobs.append(b"P" + old_packed(*head, feats))
        else:
            preds.append((*head, feats, token_ids(rng, n_int)))
            blobs.append(b"P" + pack_prediction(*preds[-1]))
    cat = b"".join(blobs)
    here = S.location(fpart, foff)
    out = np.empty(len(cat) + len(fb) + 100 * n, np.uint8)
    errors = np.empty(len(joined))
    size = scan.feedback_samples(
        np.frombuffer(fb, np.uint8), cols.rid_at, cols.labels, np.array(joined, np.int64), np.frombuffer(cat, np.uint8), np.cumsum([len(b) for b in blobs]), np.frombuffer(here, np.uint8), out, errors
    )
    encoder = S.SampleEncoder(serde)
    fast = encoder.batch_of("id", "m", 7, len(joined), out[:size].tobytes())
    dicts = [
        {
            "sample_id": rids[k],
            "model_version": v,
            "features": feats,
            "int_features": ints,
            "label": int(cols.labels[k]),
            "predicted": predicted,
            "confidence": conf,
            "prediction_partition": ppart,
            "prediction_offset": poff,
            "feedback_partition": fpart,
            "feedback_offset": foff,
        }
        for k, (v, ppart, poff, predicted, conf, feats, ints) in zip(joined, preds)
    ]
    assert fast == encoder.generic("id", "m", 7, dicts)
    assert serde.decode("LabeledSampleBatch", fast)["items"] == dicts
    assert reference_decode("LabeledSampleBatch", fast)["items"] == dicts
    assert errors.tolist() == [0.0 if d["label"] == d["predicted"] else 1.0 for d in dicts]
    bad = np.frombuffer(b"X" + blobs[0][1:], np.uint8)
    assert scan.feedback_samples(np.frombuffer(fb, np.uint8), cols.rid_at, cols.labels, np.array(joined[:1], np.int64), bad, np.array([len(bad)]), np.frombuffer(here, np.uint8), out, errors) == -1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), n_features=st.integers(0, 20), n_int=st.integers(0, 20), seed=st.integers(0, 10**6), ppart=st.integers(0, 100), poff=st.integers(0, 2**45))
def test_prediction_samples_are_fastavros_labeled_samples(n: int, n_features: int, n_int: int, seed: int, ppart: int, poff: int) -> None:
    serde = default_serde()
    rng = random.Random(seed)
    batch = prediction_batch(rng, [f"rid-{i}" for i in range(n)], n_features, rng.randrange(0, 2**40), n_int)
    cols = BatchReader(serde)._scan_predictions(serde.encode("PredictionBatch", batch), ppart, poff)
    joined = sorted(rng.sample(range(n), rng.randrange(1, n + 1)))
    feedback = [(rng.randrange(-3, 9), rng.randrange(0, 64), rng.randrange(0, 2**45)) for _ in joined]
    fbs = [b"%d:%d:%d" % f for f in feedback]
    cat = b"".join(fbs)
    here = S.location(ppart, poff)
    out = np.empty(len(cols.values) + len(cols.rids) + 100 * n, np.uint8)
    errors = np.empty(len(joined))
    args = (np.frombuffer(cols.rids, np.uint8), cols.rid_at, np.frombuffer(cols.values, np.uint8), cols.val_at, cols.labels, cols.version, np.frombuffer(here, np.uint8), np.array(joined, np.int64))
    size = scan.prediction_samples(*args, np.frombuffer(cat, np.uint8), np.cumsum([len(f) for f in fbs]), out, errors)
    encoder = S.SampleEncoder(serde)
    items = batch["items"]
    dicts = [
        {
            "sample_id": items[k]["request_id"],
            "model_version": batch["version"],
            "features": items[k]["features"],
            "int_features": items[k]["int_features"],
            "label": label,
            "predicted": items[k]["label"],
            "confidence": items[k]["confidence"],
            "prediction_partition": ppart,
            "prediction_offset": poff,
            "feedback_partition": fpart,
            "feedback_offset": foff,
        }
        for k, (label, fpart, foff) in zip(joined, feedback)
    ]
    fast = encoder.batch_of("id", "m", 7, len(joined), out[:size].tobytes())
    assert fast == encoder.generic("id", "m", 7, dicts)
    assert reference_decode("LabeledSampleBatch", fast)["items"] == dicts
    assert errors.tolist() == [0.0 if d["label"] == d["predicted"] else 1.0 for d in dicts]
    for bad in (b"1:2", b"x:1:2", b"1:2:3:4", b":1:2"):
        assert scan.prediction_samples(*args[:7], np.array(joined[:1], np.int64), np.frombuffer(bad, np.uint8), np.array([len(bad)]), out, errors) == -1


def test_the_shipped_schemas_are_the_ones_the_scanner_reads() -> None:
    """A change to either schema (fields, order, types) turns the scanner off for its records
    (they go through the serde, correct but slower): this says so, so that scan.py is updated."""
    registry = default_serde().registry
    assert {event: registry.get(event).fingerprint for event in SCANNED} == SCANNED


def test_records_with_the_reversed_pre_2026_12_header_go_through_the_serde() -> None:
    """Records written before the header fix carry the fingerprint byte-reversed: the scanner
    leaves them to the serde (which reads and counts them), with the same columns."""
    serde = default_serde()
    batch = prediction_batch(random.Random(3), [f"r{i}" for i in range(7)], 5, 2)
    good = serde.encode("PredictionBatch", batch)
    legacy = good[:2] + good[2:10][::-1] + good[10:]
    fell_back: list[str] = []
    reader = BatchReader(serde, on_fallback=fell_back.append)
    same_predictions(reader.predictions(legacy, 1, 2), reader.predictions(good, 1, 2))
    assert fell_back == ["PredictionBatch"]


def encode_v1(event_file: str, record: dict) -> bytes:
    """``record`` as a producer of schema v1 (no ``int_features``) writes it."""
    version = load_schema_file(RELEASED_DIR / "v1" / event_file)
    out = io.BytesIO()
    out.write(MARKER + version.fingerprint)
    fastavro.schemaless_writer(out, version.parsed, {**record, "items": [{k: v for k, v in it.items() if k != "int_features"} for it in record["items"]]})
    return out.getvalue()


def test_v1_records_are_read_by_the_serde_into_the_same_columns_as_v2() -> None:
    """A v1 prediction record (written before int_features existed) falls back to the serde and
    packs exactly what the v2 record of the same batch packs: an empty int_features block."""
    serde = default_serde()
    fell_back: list[str] = []
    reader = BatchReader(serde, on_fallback=fell_back.append)
    batch = prediction_batch(random.Random(5), [f"r{i}" for i in range(9)], 6, 4)
    v1, v2 = encode_v1("prediction.avsc", batch), serde.encode("PredictionBatch", batch)
    assert v1[2:10] != v2[2:10] and reader._scan_predictions(v1, 0, 0) is None
    old = reader.predictions(v1, 2, 30)
    same_predictions(old, reader.predictions(v2, 2, 30))
    assert fell_back == ["PredictionBatch"]
    assert all(S.inputs_of(unpack_prediction(old.value(k))[5]) == (it["features"], []) for k, it in enumerate(batch["items"]))


def test_feedback_of_either_schema_version_is_scanned() -> None:
    """FeedbackBatch did not change in v2: its v1 and v2 fingerprints are one, and scanned."""
    assert load_schema_file(RELEASED_DIR / "v1" / "feedback.avsc").fingerprint == SCANNED["FeedbackBatch"]
    assert load_schema_file(RELEASED_DIR / "v2" / "feedback.avsc").fingerprint == SCANNED["FeedbackBatch"]
    assert load_schema_file(RELEASED_DIR / "v2" / "prediction.avsc").fingerprint == SCANNED["PredictionBatch"]


def test_an_integer_models_batch_is_scanned_and_its_ids_reach_the_sample_exactly() -> None:
    serde = default_serde()
    fell_back: list[str] = []
    reader = BatchReader(serde, on_fallback=fell_back.append)
    batch = prediction_batch(random.Random(8), ["a", "b"], 0, 7)
    ids = [[2**40, -1, 0, 2**63 - 1, -(2**63), 101, -(2**40)], list(range(-300, 300, 7))]
    for item, values in zip(batch["items"], ids):
        item["int_features"] = values
    cols = reader.predictions(serde.encode("PredictionBatch", batch), 1, 5)
    assert fell_back == []
    fbs = [b"%d:3:9" % it["label"] for it in batch["items"]]
    out = np.empty(4096, np.uint8)
    errors = np.empty(2)
    here = S.location(1, 5)
    size = scan.prediction_samples(
        np.frombuffer(cols.rids, np.uint8), cols.rid_at, np.frombuffer(cols.values, np.uint8), cols.val_at, cols.labels, cols.version,
        np.frombuffer(here, np.uint8), np.array([0, 1], np.int64), np.frombuffer(b"".join(fbs), np.uint8), np.cumsum([len(f) for f in fbs]), out, errors,
    )  # fmt: skip
    data = S.SampleEncoder(serde).batch_of("id", batch["model"], 7, 2, out[:size].tobytes())
    for decoded in (serde.decode("LabeledSampleBatch", data), reference_decode("LabeledSampleBatch", data)):
        assert [it["int_features"] for it in decoded["items"]] == ids
        assert [it["features"] for it in decoded["items"]] == [[], []]


def _non_minimal(data: bytes, value: int) -> bytes:
    """``data`` with the first minimal varint of ``value`` rewritten one byte longer."""
    z = S.varint(value)
    longer = bytes([*z[:-1], z[-1] | 0x80, 0])
    assert data.count(z) >= 1
    return data.replace(z, longer, 1)


def test_non_minimal_int_varints_are_left_to_the_serde_with_the_same_columns() -> None:
    """A valid but non-minimal varint cannot be copied into a sample as it is (fastavro would
    write it shorter): the scanner declines and the serde's columns are the canonical ones."""
    serde = default_serde()
    batch = prediction_batch(random.Random(9), ["x"], 0, 1)
    batch["items"][0]["int_features"] = [123456789, 5]
    data = serde.encode("PredictionBatch", batch)
    odd = _non_minimal(data, 123456789)
    assert serde.decode("PredictionBatch", odd) == serde.decode("PredictionBatch", data)
    reader = BatchReader(serde)
    assert reader._scan_predictions(odd, 0, 0) is None
    same_predictions(reader.predictions(odd, 0, 0), reader.predictions(data, 0, 0))


def test_an_input_too_long_for_the_join_is_a_clear_error_on_both_paths() -> None:
    serde = default_serde()
    reader = BatchReader(serde)
    fits = prediction_batch(random.Random(1), ["a"], 16375, 1)
    assert reader._scan_predictions(serde.encode("PredictionBatch", fits), 0, 0) is not None
    too_long = prediction_batch(random.Random(1), ["a"], 16376, 1)
    for fast in (True, False):
        with pytest.raises(SerdeError) as err:
            BatchReader(serde, fast=fast).predictions(serde.encode("PredictionBatch", too_long), 0, 0)
        assert err.value.reason == "input_too_long"
