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
from services.common.serde import MARKER, default_serde
from services.drift import samples as S
from services.drift import scan
from services.drift.columns import SCANNED, BatchReader, _feedback_from, _predictions_from
from services.drift.join import pack_prediction


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40)


def prediction_batch(rng: random.Random, rids: list[str], n_features: int, version: int) -> dict:
    items = []
    for rid in rids:
        scores = [f32(rng.random()) for _ in range(rng.randrange(0, 5))]
        items.append(
            {
                "request_id": rid,
                "features": [f32(rng.uniform(-1e3, 1e3)) for _ in range(n_features)],
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
@given(rids=st.lists(ids, max_size=60), n_features=st.integers(0, 40), version=st.integers(0, 2**40), seed=st.integers(0, 10**6), partition=st.integers(0, 200), offset=st.integers(0, 2**50))
def test_scanned_predictions_equal_the_serde_path(rids: list[str], n_features: int, version: int, seed: int, partition: int, offset: int) -> None:
    serde = default_serde()
    batch = prediction_batch(random.Random(seed), rids, n_features, version)
    data = serde.encode("PredictionBatch", batch)
    scanned = BatchReader(serde)._scan_predictions(data, partition, offset)
    assert scanned is not None
    same_predictions(scanned, _predictions_from(serde.decode("PredictionBatch", data), partition, offset))
    for k, item in enumerate(batch["items"]):
        assert scanned.value(k) == pack_prediction(version, partition, offset, item["label"], item["confidence"], item["features"])


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


def test_every_truncation_and_corruption_ends_in_a_status_or_the_serdes_error() -> None:
    serde = default_serde()
    reader = BatchReader(serde)
    data = serde.encode("PredictionBatch", prediction_batch(random.Random(1), [f"r{i}" for i in range(5)], 4, 3))
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
    batch = prediction_batch(random.Random(3), ["a", "b", "c", "ü-non-ascii"], 5, 2)
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


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), n_features=st.integers(0, 20), seed=st.integers(0, 10**6), fpart=st.integers(0, 100), foff=st.integers(0, 2**45))
def test_feedback_samples_are_fastavros_labeled_samples(n: int, n_features: int, seed: int, fpart: int, foff: int) -> None:
    serde = default_serde()
    rng = random.Random(seed)
    rids = [f"rid-{i}" for i in range(n)]
    fb = serde.encode("FeedbackBatch", {"event_id": "e", "model": "m", "sent_at_ms": 0, "items": [{"request_id": r, "label": rng.randrange(0, 9), "observed_at_ms": 0} for r in rids]})
    cols = BatchReader(serde)._scan_feedback(fb)
    joined = sorted(rng.sample(range(n), rng.randrange(1, n + 1)))
    preds = []
    for k in joined:
        feats = [f32(rng.uniform(-5, 5)) for _ in range(n_features)]
        preds.append((rng.randrange(0, 2**40), rng.randrange(0, 64), rng.randrange(0, 2**45), rng.randrange(0, 9), f32(rng.random()), feats))
    blobs = [b"P" + pack_prediction(*p) for p in preds]
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
            "label": int(cols.labels[k]),
            "predicted": predicted,
            "confidence": conf,
            "prediction_partition": ppart,
            "prediction_offset": poff,
            "feedback_partition": fpart,
            "feedback_offset": foff,
        }
        for k, (v, ppart, poff, predicted, conf, feats) in zip(joined, preds)
    ]
    assert fast == encoder.generic("id", "m", 7, dicts)
    assert errors.tolist() == [0.0 if d["label"] == d["predicted"] else 1.0 for d in dicts]
    bad = np.frombuffer(b"X" + blobs[0][1:], np.uint8)
    assert scan.feedback_samples(np.frombuffer(fb, np.uint8), cols.rid_at, cols.labels, np.array(joined[:1], np.int64), bad, np.array([len(bad)]), np.frombuffer(here, np.uint8), out, errors) == -1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), n_features=st.integers(0, 20), seed=st.integers(0, 10**6), ppart=st.integers(0, 100), poff=st.integers(0, 2**45))
def test_prediction_samples_are_fastavros_labeled_samples(n: int, n_features: int, seed: int, ppart: int, poff: int) -> None:
    serde = default_serde()
    rng = random.Random(seed)
    batch = prediction_batch(rng, [f"rid-{i}" for i in range(n)], n_features, rng.randrange(0, 2**40))
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
    assert encoder.batch_of("id", "m", 7, len(joined), out[:size].tobytes()) == encoder.generic("id", "m", 7, dicts)
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
