"""Compiled readers and writers for the drift service's hot path (numba).

The service needs only a few fields of each event (request id, input, predicted label and
confidence of a prediction; request id and label of a feedback), and it needs them as bytes to
hand to Redis and to copy into labeled samples, not as Python objects. fastavro's generic
reader builds a dict per event and a Python float per feature (~1.6 µs per event in the
worker), then the service packed those floats back into bytes. These functions read the Avro
body of a `PredictionBatch` / `FeedbackBatch` written with the *current* schema in one pass and
write the join script's arguments directly; `feedback_samples` writes the `LabeledSample`
items of a feedback record's joins from the predictions Redis kept.

A prediction's input is its ``features`` (array<float>) and ``int_features`` (array<long>,
schema v2) arrays, which sit next to each other in both `Prediction` and `LabeledSample`: they
are handled as one opaque blob (both blocks), stored in Redis and copied into the sample.

They accept only the canonical encoding (what fastavro and the Java writer produce: positive
block counts, every `features` and `int_features` array in one block, minimal varints in
`int_features`, ASCII request ids). Anything else returns a non-zero status and the caller
falls back to the generic serde, which either reads the record (older writer schemas,
multi-block arrays, non-ASCII ids) or raises the precise `SerdeError`
that makes it a dead letter. Every read is bounds-checked: malformed bytes end in a status, never
in a read outside the buffer (numba does not check indexes itself).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
TRUNCATED = 1
BAD_LENGTH = 2
IRREGULAR = 3
TRAILING = 4
NON_ASCII = 5
TOO_LONG = 6

STATUS = {
    OK: "ok",
    TRUNCATED: "truncated",
    BAD_LENGTH: "bad_length",
    IRREGULAR: "irregular",
    TRAILING: "trailing_bytes",
    NON_ASCII: "non_ascii",
    TOO_LONG: "too_long",
}

HEAD_LEN = 28
"""Bytes of a packed prediction's head: version i64, partition i32, offset i64, predicted i32,
confidence f32, little-endian (``join.PRED_HEAD``)."""

MAX_ID = 65535
"""Longest request id the fast path passes to Redis (two length bytes)."""

MAX_VALUE = 65535
"""Longest packed prediction (``P`` included) the fast path passes to Redis (two length bytes;
``join.MAX_VALUE``)."""


@njit(cache=True, nogil=True)
def _long(buf, pos, end):  # pragma: no cover - compiled
    """Avro zig-zag varint at ``pos``: (value, next position), next position -1 when malformed."""
    result = np.uint64(0)
    shift = np.uint64(0)
    while True:
        if pos >= end:
            return np.int64(0), -1
        b = buf[pos]
        pos += 1
        result |= np.uint64(b & 0x7F) << shift
        if b < 0x80:
            break
        shift += np.uint64(7)
        if shift > np.uint64(63):
            return np.int64(0), -1
    value = np.int64(result >> np.uint64(1)) ^ -np.int64(result & np.uint64(1))
    return value, pos


@njit(cache=True, nogil=True)
def _put_long(out, pos, value):  # pragma: no cover - compiled
    z = np.uint64((np.int64(value) << np.int64(1)) ^ (np.int64(value) >> np.int64(63)))
    while z > np.uint64(0x7F):
        out[pos] = np.uint8((z & np.uint64(0x7F)) | np.uint64(0x80))
        pos += 1
        z >>= np.uint64(7)
    out[pos] = np.uint8(z)
    return pos + 1


@njit(cache=True, nogil=True)
def _put_le(out, pos, value, size):  # pragma: no cover - compiled
    v = np.uint64(np.int64(value))
    for i in range(size):
        out[pos + i] = np.uint8((v >> np.uint64(8 * i)) & np.uint64(0xFF))
    return pos + size


@njit(cache=True, nogil=True)
def _get_le(buf, pos, size):  # pragma: no cover - compiled
    v = np.uint64(0)
    for i in range(size):
        v |= np.uint64(buf[pos + i]) << np.uint64(8 * i)
    if size == 4:
        return np.int64(np.int32(np.uint32(v)))
    return np.int64(v)


@njit(cache=True, nogil=True)
def _string(buf, pos, end):  # pragma: no cover - compiled
    """(start of the bytes, end of the bytes) of an Avro string/bytes; start -1 when malformed."""
    n, pos = _long(buf, pos, end)
    if pos < 0:
        return -1, TRUNCATED
    if n < 0:
        return -1, BAD_LENGTH
    if pos + n > end:
        return -1, TRUNCATED
    return pos, pos + n


@njit(cache=True, nogil=True)
def _head(buf, start, end):  # pragma: no cover - compiled
    """event_id (checked ASCII: the serde checks that it is UTF-8) and model of a batch:
    (status, model start, model end, next position)."""
    s, e = _string(buf, start, end)
    if s < 0:
        return e, 0, 0, 0
    for j in range(s, e):
        if buf[j] >= 0x80:
            return NON_ASCII, 0, 0, 0
    ms, me = _string(buf, e, end)
    if ms < 0:
        return me, 0, 0, 0
    return OK, ms, me, me


@njit(cache=True, nogil=True)
def _block(buf, pos, end):  # pragma: no cover - compiled
    """An Avro block count (a negative one is followed by the block's size): (count, next
    position), next position -1 when malformed."""
    count, pos = _long(buf, pos, end)
    if pos >= 0 and count < 0:
        _size, pos = _long(buf, pos, end)
        count = -count
    return count, pos


@njit(cache=True, nogil=True)
def _request_id(buf, pos, end, n, rid_at, keys, kp):  # pragma: no cover - compiled
    """Item n's request id: noted in ``rid_at``, copied to ``keys`` after two length bytes.
    Returns (status, next position, next key position)."""
    s, e = _string(buf, pos, end)
    if s < 0:
        return e, 0, 0
    if e - s > MAX_ID:
        return TOO_LONG, 0, 0
    for j in range(s, e):
        if buf[j] >= 0x80:
            return NON_ASCII, 0, 0
    rid_at[n, 0] = pos
    rid_at[n, 1] = e
    keys[kp] = np.uint8((e - s) & 0xFF)
    keys[kp + 1] = np.uint8((e - s) >> 8)
    kp += 2
    for j in range(s, e):
        keys[kp] = buf[j]
        kp += 1
    return OK, e, kp


@njit(cache=True, nogil=True)
def _float_skip_array(buf, pos, end):  # pragma: no cover - compiled
    """Skips an Avro array<float> (any block layout); next position or -status."""
    while True:
        count, pos = _block(buf, pos, end)
        if pos < 0:
            return -TRUNCATED
        if count == 0:
            return pos
        if count < 0 or count > (end - pos) // 4:  # before multiplying: 4 * count can wrap
            return -TRUNCATED
        pos += 4 * count


@njit(cache=True, nogil=True)
def _int_features(buf, pos, end):  # pragma: no cover - compiled
    """The ``int_features`` array<long> at ``pos``, one block of minimal varints (so that copying
    its bytes gives what an Avro writer writes): (status, items, payload start, payload end,
    next position, sum of the values as float64)."""
    n, pos = _long(buf, pos, end)
    if pos < 0:
        return TRUNCATED, 0, 0, 0, 0, 0.0
    if n < 0:
        return IRREGULAR, 0, 0, 0, 0, 0.0
    start = pos
    total = 0.0
    if n == 0:
        return OK, 0, start, start, pos, total
    for _ in range(n):
        first = pos
        value, pos = _long(buf, pos, end)
        if pos < 0:
            return TRUNCATED, 0, 0, 0, 0, 0.0
        last = buf[pos - 1]
        # a trailing zero group is not minimal; a 10th byte holds only bit 63
        if (pos - first > 1 and last == 0) or (pos - first == 10 and last > 1):
            return IRREGULAR, 0, 0, 0, 0, 0.0
        total += np.float64(value)
    stop = pos
    if pos >= end:
        return TRUNCATED, 0, 0, 0, 0, 0.0
    if buf[pos] != 0:
        return IRREGULAR, 0, 0, 0, 0, 0.0
    return OK, n, start, stop, pos + 1, total


@njit(cache=True, nogil=True)
def _copy_block(values, vp, buf, n, start, stop):  # pragma: no cover - compiled
    """Writes a one-block Avro array of ``n`` items whose bytes are ``buf[start:stop]``: the
    count (zig-zag like any Avro long), the bytes, the end marker. Returns the next position."""
    if n > 0:
        vp = _put_long(values, vp, n)
        for j in range(start, stop):
            values[vp] = buf[j]
            vp += 1
    values[vp] = 0
    return vp + 1


@njit(cache=True, nogil=True)
def scan_predictions(buf, start, partition, offset, version_out, keys, values, val_at, rid_at, labels, conf_bits, means, f32):  # pragma: no cover - compiled
    """Reads a `PredictionBatch` body and writes the join script's arguments.

    ``keys``: per item, two length bytes and the request id; ``values``: per item, two length
    bytes and ``P`` + packed head + the input (the features and the int_features, each as a
    one-block Avro array: what Redis keeps for a waiting prediction), ``val_at[i]`` where item
    i's entry starts. ``rid_at[i]``: start and end of item i's request id as an Avro string
    (length prefix included) in ``buf``, ready to copy into a sample. ``conf_bits`` is the
    uint32 view of the float32 confidences. ``means[i]``: the mean of item i's features, of its
    int_features when it has no features (an integer model), 0.0 when it has neither. ``f32`` is
    a 4-byte scratch array viewed as float32. Returns (status, items, model start, model end,
    keys length, values length).
    """
    end = buf.shape[0]
    status, ms, me, pos = _head(buf, start, end)
    if status != OK:
        return status, 0, 0, 0, 0, 0
    version, pos = _long(buf, pos, end)
    if pos < 0:
        return TRUNCATED, 0, 0, 0, 0, 0
    version_out[0] = version
    _produced, pos = _long(buf, pos, end)
    if pos < 0:
        return TRUNCATED, 0, 0, 0, 0, 0
    n = 0
    kp = 0
    vp = 0
    cap = labels.shape[0]
    f32u = f32.view(np.uint8)
    f32f = f32.view(np.float32)
    while True:
        count, pos = _block(buf, pos, end)
        if pos < 0:
            return TRUNCATED, 0, 0, 0, 0, 0
        if count == 0:
            break
        for _ in range(count):
            if n >= cap:
                return BAD_LENGTH, 0, 0, 0, 0, 0
            status, pos, kp = _request_id(buf, pos, end, n, rid_at, keys, kp)
            if status != OK:
                return status, 0, 0, 0, 0, 0
            # features: one block of floats, then the end marker
            nf, pos = _long(buf, pos, end)
            if pos < 0:
                return TRUNCATED, 0, 0, 0, 0, 0
            if nf < 0:
                return IRREGULAR, 0, 0, 0, 0, 0
            fstart = pos
            if nf > 0:
                if nf > (end - pos) // 4:  # compared before multiplying: 4 * nf can wrap
                    return TRUNCATED, 0, 0, 0, 0, 0
                pos += 4 * nf
                if pos >= end:
                    return TRUNCATED, 0, 0, 0, 0, 0
                if buf[pos] != 0:
                    return IRREGULAR, 0, 0, 0, 0, 0
                pos += 1
            fend = fstart + 4 * nf
            if pos < end and buf[pos] == 0:  # no int_features (a floating-point model)
                ni, istart, iend, isum = 0, pos, pos, 0.0
                pos += 1
            else:
                status, ni, istart, iend, pos, isum = _int_features(buf, pos, end)
                if status != OK:
                    return status, 0, 0, 0, 0, 0
            # scores, skipped
            pos = _float_skip_array(buf, pos, end)
            if pos < 0:
                return -pos, 0, 0, 0, 0, 0
            label, pos = _long(buf, pos, end)
            if pos < 0:
                return TRUNCATED, 0, 0, 0, 0, 0
            if label < -2147483648 or label > 2147483647:
                return BAD_LENGTH, 0, 0, 0, 0, 0
            if pos + 8 > end:
                return TRUNCATED, 0, 0, 0, 0, 0
            cpos = pos
            pos += 8  # confidence, latency_ms
            _requested, pos = _long(buf, pos, end)
            if pos < 0:
                return TRUNCATED, 0, 0, 0, 0, 0
            labels[n] = label
            conf_bits[n] = np.uint32(_get_le(buf, cpos, 4) & 0xFFFFFFFF)
            # the packed value: length, 'P', head, features block, int_features block
            length_at = vp
            val_at[n] = vp
            vp += 2
            values[vp] = 0x50  # 'P'
            vp += 1
            vp = _put_le(values, vp, version, 8)
            vp = _put_le(values, vp, partition, 4)
            vp = _put_le(values, vp, offset, 8)
            vp = _put_le(values, vp, label, 4)
            for j in range(4):
                values[vp + j] = buf[cpos + j]
            vp += 4
            vp = _copy_block(values, vp, buf, nf, fstart, fend)
            vp = _copy_block(values, vp, buf, ni, istart, iend)
            if nf > 0:
                total = 0.0
                for j in range(fstart, fend, 4):
                    for b in range(4):
                        f32u[b] = buf[j + b]
                    total += np.float64(f32f[0])
                means[n] = total / nf
            elif ni > 0:
                means[n] = isum / ni
            else:
                means[n] = 0.0
            size = vp - length_at - 2
            if size > MAX_VALUE:
                return TOO_LONG, 0, 0, 0, 0, 0
            values[length_at] = np.uint8(size & 0xFF)
            values[length_at + 1] = np.uint8(size >> 8)
            n += 1
    if pos != end:
        return TRAILING, 0, 0, 0, 0, 0
    return OK, n, ms, me, kp, vp


@njit(cache=True, nogil=True)
def scan_feedback(buf, start, keys, labels_text, rid_at, labels):  # pragma: no cover - compiled
    """Reads a `FeedbackBatch` body; ``labels_text``: per item one length byte and the label in
    decimal (the script builds parked feedback from it). Returns (status, items, model start,
    model end, keys length, labels_text length)."""
    end = buf.shape[0]
    status, ms, me, pos = _head(buf, start, end)
    if status != OK:
        return status, 0, 0, 0, 0, 0
    _sent, pos = _long(buf, pos, end)
    if pos < 0:
        return TRUNCATED, 0, 0, 0, 0, 0
    n = 0
    kp = 0
    lp = 0
    cap = labels.shape[0]
    while True:
        count, pos = _block(buf, pos, end)
        if pos < 0:
            return TRUNCATED, 0, 0, 0, 0, 0
        if count == 0:
            break
        for _ in range(count):
            if n >= cap:
                return BAD_LENGTH, 0, 0, 0, 0, 0
            status, pos, kp = _request_id(buf, pos, end, n, rid_at, keys, kp)
            if status != OK:
                return status, 0, 0, 0, 0, 0
            label, pos = _long(buf, pos, end)
            if pos < 0:
                return TRUNCATED, 0, 0, 0, 0, 0
            if label < -2147483648 or label > 2147483647:
                return BAD_LENGTH, 0, 0, 0, 0, 0
            _observed, pos = _long(buf, pos, end)
            if pos < 0:
                return TRUNCATED, 0, 0, 0, 0, 0
            labels[n] = label
            # decimal text of the label
            length_at = lp
            lp += 1
            v = label
            if v < 0:
                labels_text[lp] = 0x2D  # '-'
                lp += 1
                v = -v
            digits_at = lp
            while True:
                labels_text[lp] = np.uint8(0x30 + v % 10)
                lp += 1
                v //= 10
                if v == 0:
                    break
            i, j = digits_at, lp - 1
            while i < j:
                t = labels_text[i]
                labels_text[i] = labels_text[j]
                labels_text[j] = t
                i += 1
                j -= 1
            labels_text[length_at] = np.uint8(lp - length_at - 1)
            n += 1
    if pos != end:
        return TRAILING, 0, 0, 0, 0, 0
    return OK, n, ms, me, kp, lp


@njit(cache=True, nogil=True)
def _features_end(blobs, pos, stop):  # pragma: no cover - compiled
    """End of the one-block features array at ``pos`` of a packed prediction, -1 when it does
    not fit before ``stop``."""
    nf, pos = _long(blobs, pos, stop)
    if pos < 0 or nf < 0 or nf > (stop - pos) // 4:
        return -1
    fend = pos if nf == 0 else pos + 4 * nf + 1
    return fend if fend <= stop else -1


@njit(cache=True, nogil=True)
def feedback_samples(buf, rid_at, labels, ks, blobs, blob_ends, here, out, errors):  # pragma: no cover - compiled
    """`LabeledSample` items of a feedback record's joins, written into ``out``.

    ``ks[j]``: item index of join j in the feedback record ``buf``; ``blobs``: the values Redis
    returned (``P``, packed head, features block, int_features block), concatenated,
    ``blob_ends`` their ends; ``here``: the feedback record's partition and offset, encoded.
    ``errors[j]`` = 1.0 when the prediction was wrong. A value packed before schema v2 ends
    with its features block: its sample gets an empty int_features block. Returns the bytes
    written, or -1 when a blob is malformed.
    """
    op = 0
    start = 0
    for j in range(ks.shape[0]):
        k = ks[j]
        stop = blob_ends[j]
        if stop - start < HEAD_LEN + 2 or blobs[start] != 0x50:
            return -1
        start += 1  # the 'P'
        version = _get_le(blobs, start, 8)
        ppart = _get_le(blobs, start + 8, 4)
        poff = _get_le(blobs, start + 12, 8)
        predicted = _get_le(blobs, start + 20, 4)
        for i in range(rid_at[k, 0], rid_at[k, 1]):
            out[op] = buf[i]
            op += 1
        op = _put_long(out, op, version)
        fend = _features_end(blobs, start + HEAD_LEN, stop)
        if fend < 0:
            return -1
        for i in range(start + HEAD_LEN, stop):
            out[op] = blobs[i]
            op += 1
        if fend == stop:  # packed before schema v2: no int_features block
            out[op] = 0
            op += 1
        label = labels[k]
        op = _put_long(out, op, label)
        op = _put_long(out, op, predicted)
        for i in range(4):
            out[op + i] = blobs[start + 24 + i]
        op += 4
        op = _put_long(out, op, ppart)
        op = _put_long(out, op, poff)
        for i in range(here.shape[0]):
            out[op] = here[i]
            op += 1
        errors[j] = 0.0 if label == predicted else 1.0
        start = stop
    return op


@njit(cache=True, nogil=True)
def _decimal(text, pos, end):  # pragma: no cover - compiled
    """A decimal int ending at ':' or ``end``: (value, position after the ':'), -1 when malformed."""
    sign = 1
    if pos < end and text[pos] == 0x2D:
        sign = -1
        pos += 1
    if pos >= end or text[pos] == 0x3A:
        return np.int64(0), -1
    v = np.int64(0)
    while pos < end and text[pos] != 0x3A:
        d = text[pos]
        if d < 0x30 or d > 0x39:
            return np.int64(0), -1
        v = v * 10 + (d - 0x30)
        pos += 1
    return sign * v, pos + 1


@njit(cache=True, nogil=True)
def prediction_samples(buf, rid_at, values, val_at, labels, version, here, ks, fbs, fb_ends, out, errors):  # pragma: no cover - compiled
    """`LabeledSample` items of a prediction record's joins (its feedback came first).

    ``values``/``val_at``: the record's packed predictions (`scan_predictions`); ``ks[j]``: item
    index of join j; ``fbs``: the parked feedback Redis returned (``label:partition:offset``),
    concatenated, ``fb_ends`` their ends; ``here``: this record's partition and offset, encoded.
    Returns the bytes written, or -1 when a feedback value is malformed.
    """
    op = 0
    start = 0
    for j in range(ks.shape[0]):
        k = ks[j]
        stop = fb_ends[j]
        label, p = _decimal(fbs, start, stop)
        if p < 0:
            return -1
        fpart, p = _decimal(fbs, p, stop)
        if p < 0:
            return -1
        foff, p = _decimal(fbs, p, stop)
        if p != stop + 1:
            return -1
        start = stop
        for i in range(rid_at[k, 0], rid_at[k, 1]):
            out[op] = buf[i]
            op += 1
        op = _put_long(out, op, version)
        v = val_at[k]
        size = np.int64(values[v]) | (np.int64(values[v + 1]) << 8)
        for i in range(v + 3 + HEAD_LEN, v + 2 + size):
            out[op] = values[i]
            op += 1
        predicted = labels[k]
        op = _put_long(out, op, label)
        op = _put_long(out, op, predicted)
        for i in range(4):
            out[op + i] = values[v + 3 + 24 + i]
        op += 4
        for i in range(here.shape[0]):
            out[op] = here[i]
            op += 1
        op = _put_long(out, op, fpart)
        op = _put_long(out, op, foff)
        errors[j] = 0.0 if label == predicted else 1.0
    return op


def warm() -> None:
    """Compiles (or loads from numba's cache) every kernel of the hot path, so that the first
    records a worker takes are not held up by compilation (~5-7 s with a cold cache on the
    2-core machine, ~1.5 s with a warm one, imports included)."""
    from services.common.events import Feedback, FeedbackBatch, Prediction, PredictionBatch
    from services.common.serde import default_serde, encode_event
    from services.drift.columns import BatchReader
    from services.drift.detectors.adwin import ADWIN
    from services.drift.detectors.river_wrap import PageHinkley

    default = default_serde()
    reader = BatchReader(default)
    item = Prediction(request_id="w", features=[0.5], scores=[1.0], label=0, confidence=1.0, latency_ms=0.0, requested_at_ms=0)
    cols = reader._scan_predictions(encode_event(PredictionBatch(model="w", version=1, items=[item]), default), 0, 0)
    fb = reader._scan_feedback(encode_event(FeedbackBatch(model="w", items=[Feedback(request_id="w", label=0)]), default))
    assert cols is not None and fb is not None
    out = np.empty(256, np.uint8)
    errors = np.empty(1)
    ks = np.zeros(1, np.int64)
    blob = np.frombuffer(b"P" + cols.value(0), np.uint8)
    feedback_samples(np.frombuffer(fb.rids, np.uint8), fb.rid_at, fb.labels, ks, blob, np.array([len(blob)]), np.zeros(2, np.uint8), out, errors)
    text = np.frombuffer(b"0:0:0", np.uint8)
    prediction_samples(
        np.frombuffer(cols.rids, np.uint8), cols.rid_at, np.frombuffer(cols.values, np.uint8), cols.val_at, cols.labels, 1, np.zeros(2, np.uint8), ks, text, np.array([len(text)]), out, errors
    )
    detector = ADWIN()
    detector.update_many([0.0, 1.0])
    detector.update(0.5)
    PageHinkley().update_many([0.0, 1.0])


if __name__ == "__main__":
    warm()
