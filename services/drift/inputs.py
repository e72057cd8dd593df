"""The per-topic halves of a step: packing records for the join script, then applying its answer.

`InputHandling` is mixed into `DriftService`: for predictions and feedback, ``_prepare_*``
hands the script the arguments `columns.BatchReader` already packed, and ``_finish_*`` feeds
the detectors (only for records past the model's watermark), builds the labeled samples of the
joins (a feedback record's in one compiled call, `scan.feedback_samples`) and publishes them
(unless the broker already has them), record by record, in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from confluent_kafka import Message

from services.common.topics import FEEDBACK, PREDICTIONS, SAMPLES
from services.drift import samples, scan
from services.drift.columns import Feedbacks, Predictions
from services.drift.join import JoinResult, source_id, unpack_feedback, unpack_prediction
from services.drift.publish import Completion
from services.drift.records import InRecord, Prepared, deterministic_id, now_ms
from services.drift.state import Firing, ModelState

_log = logging.getLogger("modelci.drift")


class InputHandling:
    """Mixin of `DriftService` (uses its metrics, joins, encoder, publisher and models)."""

    metrics: Any
    encoder: Any
    publisher: Any
    policy: Any
    topics: dict[str, str]
    models: dict[str, ModelState]
    _marks: dict[str, list[str]]
    _sample_outstanding: dict[str, int]
    _known_starts: set[tuple[str, int]]
    _in_children: dict[tuple[str, bool], tuple[Any, Any, Any]]

    def _step_metrics(self, topic: str, records: list[InRecord]) -> None:
        if records:
            self.metrics.take_records.labels(topic).observe(len(records))
            self._received(topic)

    def _join_metrics(self, model: str, result: Any) -> None:
        join = self.metrics.join
        if result.joined:
            join.labels(model, "hit").inc(result.joined)
        if result.parked:
            join.labels(model, "miss").inc(result.parked)
        if result.duplicate_feedback:
            join.labels(model, "duplicate_feedback").inc(result.duplicate_feedback)
        if result.duplicate_prediction:
            join.labels(model, "duplicate_prediction").inc(result.duplicate_prediction)

    def _take_marks(self, model: str) -> list[str]:
        marks = self._marks.pop(model, None)
        return marks or []

    def _prepare_predictions(self, model: str, recs: list[tuple[InRecord, Predictions]]) -> Prepared:
        batches = [(source_id("p", rec.partition, rec.offset), cols.n, cols.ids, cols.values) for rec, cols in recs]
        return Prepared(model, "p", recs, batches)

    async def _finish_predictions(self, prep: Prepared, result: JoinResult, done: Completion) -> None:
        model, recs = prep.model, prep.recs
        state = await self.model(model)
        self._join_metrics(model, result)
        for i, ((rec, cols), rj) in enumerate(zip(recs, result.records)):
            self._count_in(PREDICTIONS, rj.replay, cols.n)
            state.sources.add((rec.topic, rec.partition))
            # joins with feedback that came first
            count = len(rj.raw) // 2
            encoded, errors = self._samples_of_predictions(rec, cols, rj) if count else (b"", [])
            firings: list[Firing] = []
            source = f"p:{rec.partition}"
            if state.applies(source, rec.offset):
                version = cols.version
                if version > state.version:
                    if state.version >= 0:
                        _log.info("model %s now serves version %d: detectors start afresh", model, version)
                        state.reset_detectors()
                    state.version = version
                where = (rec.topic, rec.partition, rec.offset)
                if state.slots_for("confidence"):
                    firings += state.feed("confidence", cols.confidence.tolist(), *where)
                if state.slots_for("input"):
                    firings += state.feed("input", cols.means.tolist(), *where)
                if count:
                    firings += state.feed("error", errors, *where)
                state.samples += count
                state.predictions += cols.n
                state.watermarks[source] = rec.offset
                state.dirty = True
            if count and rj.status != "o":
                self._publish_samples(state, rec, "p", count, encoded, done)
            await self._after_record(state, firings, done)
            if i % 4 == 3:
                # Let the loop serve Redis replies and Kafka fetches meanwhile.
                await asyncio.sleep(0)

    def _samples_of_predictions(self, rec: InRecord, cols: Predictions, rj: Any) -> tuple[bytes | list[Any], list[float]]:
        """The samples of a prediction record's joins and the error (0/1) of each."""
        ks, fbs = _joins(rj)
        if not self.encoder.fast:
            out, errors = [], []
            for k, fb in zip(ks.tolist(), fbs):
                label, fpart, foff = unpack_feedback(fb)
                version, ppart, poff, predicted, confidence, inputs = unpack_prediction(cols.value(k))
                errors.append(0.0 if label == predicted else 1.0)
                out.append(_sample_dict(_request_id(cols.sample_id(k)), version, inputs, label, predicted, confidence, ppart, poff, fpart, foff))
            return out, errors
        cat, ends = _concatenated(fbs)
        here = samples.location(rec.partition, rec.offset)
        out = np.empty(len(cols.values) + len(cols.rids) + (64 + len(here)) * len(fbs), np.uint8)
        errors_out = np.empty(len(fbs), np.float64)
        size = scan.prediction_samples(
            np.frombuffer(cols.rids, np.uint8),
            cols.rid_at,
            np.frombuffer(cols.values, np.uint8),
            cols.val_at,
            cols.labels,
            cols.version,
            np.frombuffer(here, np.uint8),
            ks,
            cat,
            ends,
            out,
            errors_out,
        )
        if size < 0:
            raise ValueError(f"Redis returned malformed parked feedback for {rec.topic}[{rec.partition}]@{rec.offset}")
        return out[:size].tobytes(), errors_out.tolist()

    def _prepare_feedback(self, model: str, recs: list[tuple[InRecord, Feedbacks]]) -> Prepared:
        batches = [(source_id("f", rec.partition, rec.offset), cols.n, cols.ids, cols.labels_text) for rec, cols in recs]
        return Prepared(model, "f", recs, batches)

    async def _finish_feedback(self, prep: Prepared, result: JoinResult, done: Completion) -> None:
        model, recs = prep.model, prep.recs
        state = await self.model(model)
        self._join_metrics(model, result)
        for i, ((rec, cols), rj) in enumerate(zip(recs, result.records)):
            self._count_in(FEEDBACK, rj.replay, cols.n)
            state.sources.add((rec.topic, rec.partition))
            firings: list[Firing] = []
            source = f"f:{rec.partition}"
            count = len(rj.raw) // 2
            encoded, errors = self._samples_of_feedback(rec, cols, rj) if count else (b"", [])
            if state.applies(source, rec.offset):
                if count:
                    firings += state.feed("error", errors, rec.topic, rec.partition, rec.offset)
                state.samples += count
                state.watermarks[source] = rec.offset
                state.dirty = True
            if count and rj.status != "o":
                self._publish_samples(state, rec, "f", count, encoded, done)
            await self._after_record(state, firings, done)
            if i % 4 == 3:
                await asyncio.sleep(0)

    def _samples_of_feedback(self, rec: InRecord, cols: Feedbacks, rj: Any) -> tuple[bytes | list[Any], list[float]]:
        """The samples of a feedback record's joins and the error (0/1) of each."""
        ks, blobs = _joins(rj)
        if not self.encoder.fast:
            out, errors = [], []
            for k, blob in zip(ks.tolist(), blobs):
                version, ppart, poff, predicted, confidence, inputs = unpack_prediction(blob[1:])
                label = int(cols.labels[k])
                errors.append(0.0 if label == predicted else 1.0)
                out.append(_sample_dict(_request_id(cols.sample_id(k)), version, inputs, label, predicted, confidence, ppart, poff, rec.partition, rec.offset))
            return out, errors
        cat, ends = _concatenated(blobs)
        here = samples.location(rec.partition, rec.offset)
        out = np.empty(len(cat) + len(cols.rids) + (64 + len(here)) * len(blobs), np.uint8)
        errors_out = np.empty(len(blobs), np.float64)
        size = scan.feedback_samples(
            np.frombuffer(cols.rids, np.uint8), cols.rid_at, cols.labels, ks, cat, ends, np.frombuffer(here, np.uint8), out, errors_out
        )
        if size < 0:
            raise ValueError(f"Redis returned a malformed packed prediction for {rec.topic}[{rec.partition}]@{rec.offset}")
        return out[:size].tobytes(), errors_out.tolist()

    def _count_in(self, topic: str, replay: bool, events: int) -> None:
        key = (topic, replay)
        children = self._in_children.get(key)
        if children is None:
            outcome = "replay" if replay else "ok"
            m = self.metrics
            children = self._in_children[key] = (
                m.records_in.labels(topic, outcome),
                m.events_in.labels(topic, outcome),
                m.batch_events.labels(topic),
            )
        records, counted, sizes = children
        records.inc()
        counted.inc(events)
        sizes.observe(events)

    def _publish_samples(self, state: ModelState, rec: InRecord, kind: str, count: int, samples: bytes | list[Any], done: Completion) -> None:
        """Publishes ``count`` samples: encoded back to back (fast encoder) or as dicts."""
        model = state.model
        source = source_id(kind, rec.partition, rec.offset)
        event_id = deterministic_id("samples", rec.topic, rec.partition, rec.offset)
        if isinstance(samples, bytes):
            value = self.encoder.batch_of(event_id, model, now_ms(), count, samples)
        else:
            value = self.encoder.generic(event_id, model, now_ms(), samples)
        self._sample_outstanding[model] = self._sample_outstanding.get(model, 0) + 1

        def delivered(msg: Message) -> None:
            self._sample_outstanding[model] -= 1
            self._marks.setdefault(model, []).append(source)
            partition, offset = msg.partition(), msg.offset()
            current = self.models.get(model)
            if current is not None and offset + 1 > current.sample_ends.get(partition, 0):
                current.sample_ends[partition] = offset + 1
                current.dirty = True
            if (model, partition) not in self._known_starts:
                self._known_starts.add((model, partition))
                asyncio.ensure_future(self.policy.note_first_sample(self.prefix(model), partition, offset))

        self.publisher.send(self.topics[SAMPLES], model.encode(), value, completion=done, on_ok=delivered, events=count)

def _joins(rj: Any) -> tuple[np.ndarray, list[bytes]]:
    """(item index, the other side's value) of a record's joins, as an index array and a list."""
    return np.array(rj.raw[0::2], np.int64) - 1, rj.values


def _concatenated(values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The values back to back (for a compiled sample writer) and where each one ends."""
    return np.frombuffer(b"".join(values), np.uint8), np.fromiter(map(len, values), np.int64, len(values)).cumsum()


def _request_id(encoded: bytes) -> str:
    """The text of an Avro-encoded string (length prefix, then UTF-8)."""
    return encoded[samples.varint_size(encoded) :].decode()


def _sample_dict(
    sample_id: str, version: int, inputs: bytes, label: int, predicted: int, confidence: float, ppart: int, poff: int, fpart: int, foff: int
) -> dict[str, Any]:
    """A sample for the generic encoder; ``inputs`` is the packed prediction's input blob."""
    features, int_features = samples.inputs_of(inputs)
    return {
        "sample_id": sample_id,
        "model_version": version,
        "features": features,
        "int_features": int_features,
        "label": label,
        "predicted": predicted,
        "confidence": confidence,
        "prediction_partition": ppart,
        "prediction_offset": poff,
        "feedback_partition": fpart,
        "feedback_offset": foff,
    }
