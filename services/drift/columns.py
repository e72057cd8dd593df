"""Input batches in the shape the drift service works with: columns of bytes and arrays.

`BatchReader` turns a consumed record into `Predictions` or `Feedbacks`: the join script's
arguments ready to send (request ids, packed values), the per-item numbers the detectors read
(labels, confidences, input means) as arrays, and where each request id sits as an Avro
string, ready to copy into a labeled sample. Records written with the current schema are read
by the compiled scanner (`services.drift.scan`); anything else (an older writer schema, an
unusual but valid encoding) goes through the project's serde, which also produces the precise
`SerdeError` of a bad record. Both paths give the same columns (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.common.errors import SerdeError
from services.common.serde import HEADER_LEN, MARKER, AvroSerde
from services.drift import samples, scan
from services.drift.join import MAX_VALUE, pack_ids, pack_labels, pack_prediction, pack_prediction_values

SCANNED = {"PredictionBatch": bytes.fromhex("62a4352eceb6970f"), "FeedbackBatch": bytes.fromhex("b8af07f6c4331ca3")}
"""Header fingerprints (CRC-64-AVRO, little-endian as the Avro specification writes them) of
the writer schemas the scanner was written for (fields, order and types): `PredictionBatch` v2
(``int_features`` after ``features``) and `FeedbackBatch` (the same in v1 and v2). Records of
any other schema, such as v1 predictions or a later version, and records with the pre-2026-12
reversed header go through the serde."""


@dataclass(slots=True)
class Predictions:
    """One `PredictionBatch` record."""

    model: str
    version: int
    n: int
    ids: bytes
    """Request ids for the join script (`join.pack_ids`)."""
    values: bytes
    """Packed predictions for the join script (`join.pack_prediction_values`)."""
    val_at: np.ndarray
    """Where item i's entry (length bytes first) starts in ``values``."""
    rids: bytes
    """A buffer holding each request id as an Avro string (the record itself, when scanned)."""
    rid_at: np.ndarray
    """(n, 2): start and end of item i's request id in ``rids``."""
    labels: np.ndarray
    confidence: np.ndarray
    means: np.ndarray
    """The ``input`` signal: mean of each item's features; for an integer model (no features)
    the mean of its int_features (token ids); 0.0 for an item with neither."""

    def sample_id(self, k: int) -> bytes:
        """Item k's request id, Avro-encoded (length prefix included)."""
        return self.rids[self.rid_at[k, 0] : self.rid_at[k, 1]]

    def value(self, k: int) -> bytes:
        """Item k's packed prediction (without the ``P``), as Redis keeps it."""
        pos = int(self.val_at[k])
        size = int.from_bytes(self.values[pos : pos + 2], "little")
        return self.values[pos + 3 : pos + 2 + size]


@dataclass(slots=True)
class Feedbacks:
    """One `FeedbackBatch` record."""

    model: str
    n: int
    ids: bytes
    labels_text: bytes
    """Labels for the join script (`join.pack_labels`)."""
    rids: bytes
    rid_at: np.ndarray
    labels: np.ndarray

    def sample_id(self, k: int) -> bytes:
        return self.rids[self.rid_at[k, 0] : self.rid_at[k, 1]]


class BatchReader:
    """Reads prediction and feedback batches; ``fast=False`` always uses the serde.

    ``on_fallback(event)`` is called for each record the serde read because the scanner did not
    take it (a metric: after a schema change, every record takes the slower path)."""

    def __init__(self, serde: AvroSerde, fast: bool = True, on_fallback: Callable[[str], None] | None = None) -> None:
        self.serde = serde
        self._fingerprints = dict(SCANNED) if fast else {}
        self._f32 = np.zeros(1, np.float32)
        self._on_fallback = on_fallback

    def _scannable(self, event: str, data: bytes | None) -> bool:
        fingerprint = self._fingerprints.get(event)
        return fingerprint is not None and data is not None and len(data) > HEADER_LEN and data[:2] == MARKER and data[2:HEADER_LEN] == fingerprint

    def predictions(self, data: bytes | None, partition: int, offset: int, topic: str | None = None) -> Predictions:
        if self._scannable("PredictionBatch", data):
            cols = self._scan_predictions(data, partition, offset)  # type: ignore[arg-type]
            if cols is not None:
                return cols
        batch = self.serde.decode("PredictionBatch", data, topic=topic, partition=partition, offset=offset)
        cols = _predictions_from(batch, partition, offset, topic)
        if self._on_fallback is not None:
            self._on_fallback("PredictionBatch")
        return cols

    def feedback(self, data: bytes | None, partition: int, offset: int, topic: str | None = None) -> Feedbacks:
        if self._scannable("FeedbackBatch", data):
            cols = self._scan_feedback(data)  # type: ignore[arg-type]
            if cols is not None:
                return cols
        batch = self.serde.decode("FeedbackBatch", data, topic=topic, partition=partition, offset=offset)
        cols = _feedback_from(batch, partition, offset, topic)
        if self._on_fallback is not None:
            self._on_fallback("FeedbackBatch")
        return cols

    def _scan_predictions(self, data: bytes, partition: int, offset: int) -> Predictions | None:
        buf = np.frombuffer(data, np.uint8)
        size = len(data)
        cap = (size - HEADER_LEN) // 13 + 1  # an item takes at least 13 bytes
        keys = np.empty(size + 2 * cap, np.uint8)
        values = np.empty(size + 40 * cap, np.uint8)
        val_at = np.empty(cap, np.int64)
        rid_at = np.empty((cap, 2), np.int64)
        labels = np.empty(cap, np.int64)
        confidence = np.empty(cap, np.float32)
        means = np.empty(cap, np.float64)
        version = np.zeros(1, np.int64)
        status, n, ms, me, nk, nv = scan.scan_predictions(
            buf, HEADER_LEN, partition, offset, version, keys, values, val_at, rid_at, labels, confidence.view(np.uint32), means, self._f32
        )
        if status != scan.OK:
            return None  # the serde reads it, or says what is wrong with it
        try:
            model = data[ms:me].decode()
        except UnicodeDecodeError:
            return None
        return Predictions(model, int(version[0]), n, keys[:nk].tobytes(), values[:nv].tobytes(), val_at[:n], data, rid_at[:n], labels[:n], confidence[:n], means[:n])

    def _scan_feedback(self, data: bytes) -> Feedbacks | None:
        buf = np.frombuffer(data, np.uint8)
        size = len(data)
        cap = (size - HEADER_LEN) // 3 + 1  # an item takes at least 3 bytes
        keys = np.empty(size + 2 * cap, np.uint8)
        labels_text = np.empty(12 * cap, np.uint8)
        rid_at = np.empty((cap, 2), np.int64)
        labels = np.empty(cap, np.int64)
        status, n, ms, me, nk, nl = scan.scan_feedback(buf, HEADER_LEN, keys, labels_text, rid_at, labels)
        if status != scan.OK:
            return None
        try:
            model = data[ms:me].decode()
        except UnicodeDecodeError:
            return None
        return Feedbacks(model, n, keys[:nk].tobytes(), labels_text[:nl].tobytes(), data, rid_at[:n], labels[:n])


def _ids(rids: list[str], topic: str | None, partition: int, offset: int) -> tuple[bytes, bytes, np.ndarray]:
    """Join-script ids, an Avro-string buffer of the ids and where each one sits in it."""
    try:
        ids = pack_ids(rids)
    except ValueError as exc:
        raise SerdeError("request_id_too_long", str(exc), topic=topic, partition=partition, offset=offset) from None
    encoded = [samples.string(rid) for rid in rids]
    sizes = np.array([len(e) for e in encoded], np.int64)
    rid_at = np.empty((len(rids), 2), np.int64)
    rid_at[:, 1] = np.cumsum(sizes)
    rid_at[:, 0] = rid_at[:, 1] - sizes
    return ids, b"".join(encoded), rid_at


def _check_labels(labels: list[int], topic: str | None, partition: int, offset: int) -> None:
    # Avro ints are varints: a corrupt one can decode to more than 32 bits.
    for label in labels:
        if not -(2**31) <= label < 2**31:
            raise SerdeError("corrupt", f"label {label} is not a 32-bit int", topic=topic, partition=partition, offset=offset)


def _predictions_from(batch: dict, partition: int, offset: int, topic: str | None = None) -> Predictions:
    items = batch["items"]
    version = batch["version"]
    _check_labels([it["label"] for it in items], topic, partition, offset)
    ids, rids, rid_at = _ids([it["request_id"] for it in items], topic, partition, offset)
    packed = [pack_prediction(version, partition, offset, it["label"], it["confidence"], it["features"], it["int_features"]) for it in items]
    _check_sizes(packed, topic, partition, offset)
    val_at = np.zeros(len(packed), np.int64)
    if packed:
        val_at[1:] = np.cumsum([3 + len(p) for p in packed[:-1]])
    return Predictions(
        batch["model"],
        version,
        len(items),
        ids,
        pack_prediction_values(packed),
        val_at,
        rids,
        rid_at,
        np.array([it["label"] for it in items], np.int64),
        np.array([it["confidence"] for it in items], np.float32),
        np.array([_input_mean(it["features"], it["int_features"]) for it in items], np.float64),
    )


def _input_mean(features: list[float], int_features: list[int]) -> float:
    """The ``input`` signal of one prediction, as the scanner computes it (float64 sums in item
    order, so both paths give the same value): the features' mean, for an integer model the
    token ids' mean (a shift in what the model is asked shows there too), 0.0 with no input."""
    values: list[float] | list[int] = features or int_features
    if not values:
        return 0.0
    total = 0.0
    for value in values:
        total += float(value)
    return total / len(values)


def _check_sizes(packed: list[bytes], topic: str | None, partition: int, offset: int) -> None:
    # The join script's arguments give a value two length bytes (the scanner says TOO_LONG).
    for value in packed:
        if len(value) + 1 > MAX_VALUE:
            raise SerdeError("input_too_long", f"a prediction's packed input takes {len(value) + 1} bytes, more than {MAX_VALUE}", topic=topic, partition=partition, offset=offset)


def _feedback_from(batch: dict, partition: int, offset: int, topic: str | None = None) -> Feedbacks:
    items = batch["items"]
    ids, rids, rid_at = _ids([it["request_id"] for it in items], topic, partition, offset)
    labels = [it["label"] for it in items]
    _check_labels(labels, topic, partition, offset)
    return Feedbacks(batch["model"], len(items), ids, pack_labels(labels), rids, rid_at, np.array(labels, np.int64))
