"""The per-topic halves of a step: packing records for the join script, then applying its answer.

`InputHandling` is mixed into `DriftService`: for predictions and feedback, ``_prepare_*``
turns decoded batches into the script's arguments, and ``_finish_*`` feeds the detectors (only
for records past the model's watermark), builds the labeled samples of the joins and publishes
them (unless the broker already has them), record by record, in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from confluent_kafka import Message

from services.common.topics import FEEDBACK, PREDICTIONS, SAMPLES
from services.drift import samples
from services.drift.join import PRED_HEAD, PRED_KEY_LEN, JoinResult, features_of, pack_feedback, source_id, unpack_prediction
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

    def _prepare_predictions(self, model: str, recs: list[tuple[InRecord, dict[str, Any]]]) -> Prepared:
        batches = []
        raws: list[list[bytes]] = []
        head = PRED_HEAD.pack
        to_block = samples.features_from_list
        for rec, batch in recs:
            version, part, off = batch["version"], rec.partition, rec.offset
            flat: list[Any] = []
            append = flat.append
            feats: list[bytes] = []
            for item in batch["items"]:
                block = to_block(item["features"])
                feats.append(block)
                append(item["request_id"])
                append(head(version, part, off, item["label"], item["confidence"]) + block)
            batches.append((source_id("p", part, off), flat))
            raws.append(feats)
        return Prepared(model, "p", recs, batches, raws)

    async def _finish_predictions(self, prep: Prepared, result: JoinResult, done: Completion) -> None:
        model, recs = prep.model, prep.recs
        state = await self.model(model)
        self._join_metrics(model, result)
        for (rec, batch), rj, feats in zip(recs, result.records, prep.extra):
            items = batch["items"]
            self._count_in(PREDICTIONS, rj.replay, len(items))
            state.sources.add((rec.topic, rec.partition))
            # (item index, true label, feedback location key) per join
            joined = []
            for k, fb in rj.joins:
                label, _, where = fb.partition(b":")
                joined.append((k, int(label), where))
            firings: list[Firing] = []
            source = f"p:{rec.partition}"
            if state.applies(source, rec.offset):
                version = batch["version"]
                if version > state.version:
                    if state.version >= 0:
                        _log.info("model %s now serves version %d: detectors start afresh", model, version)
                        state.reset_detectors()
                    state.version = version
                where = (rec.topic, rec.partition, rec.offset)
                if state.slots_for("confidence"):
                    firings += state.feed("confidence", [it["confidence"] for it in items], *where)
                if state.slots_for("input"):
                    firings += state.feed("input", [sum(f) / len(f) if f else 0.0 for f in (it["features"] for it in items)], *where)
                if joined:
                    errors = [0.0 if items[k]["label"] == label else 1.0 for k, label, _ in joined]
                    firings += state.feed("error", errors, *where)
                state.samples += len(joined)
                state.predictions += len(items)
                state.watermarks[source] = rec.offset
                state.dirty = True
            if joined and rj.status != "o":
                self._publish_samples(state, rec, "p", self._samples_of_predictions(rec, batch, joined, feats), done)
            await self._after_record(state, firings, done)
            # Let the loop send the next step's script as soon as Redis answered the last one.
            await asyncio.sleep(0)

    def _samples_of_predictions(self, rec: InRecord, batch: dict[str, Any], joined: list[tuple[int, int, bytes]], feats: list[bytes]) -> list[Any]:
        items = batch["items"]
        if not self.encoder.fast:
            out = []
            for k, label, where in joined:
                it = items[k]
                fpart, foff = map(int, where.split(b":"))
                out.append(_sample_dict(it["request_id"], batch["version"], it["features"], label, it["label"], it["confidence"], rec.partition, rec.offset, fpart, foff))
            return out
        version = samples.varint(batch["version"])
        here = samples.location(rec.partition, rec.offset)
        feedback_at: dict[bytes, bytes] = {}
        out = []
        sample = samples.sample
        for k, label, where in joined:
            it = items[k]
            at = feedback_at.get(where)
            if at is None:
                fpart, foff = where.split(b":")
                at = feedback_at[where] = samples.location(int(fpart), int(foff))
            out.append(sample(it["request_id"], version, feats[k], label, it["label"], it["confidence"], here, at))
        return out

    def _prepare_feedback(self, model: str, recs: list[tuple[InRecord, dict[str, Any]]]) -> Prepared:
        batches = []
        for rec, batch in recs:
            part, off = rec.partition, rec.offset
            flat: list[Any] = []
            append = flat.append
            for item in batch["items"]:
                append(item["request_id"])
                append(pack_feedback(item["label"], part, off))
            batches.append((source_id("f", part, off), flat))
        return Prepared(model, "f", recs, batches, [])

    async def _finish_feedback(self, prep: Prepared, result: JoinResult, done: Completion) -> None:
        model, recs = prep.model, prep.recs
        state = await self.model(model)
        self._join_metrics(model, result)
        for (rec, batch), rj in zip(recs, result.records):
            items = batch["items"]
            self._count_in(FEEDBACK, rj.replay, len(items))
            state.sources.add((rec.topic, rec.partition))
            joined = [(k, blob, unpack_prediction(blob)) for k, blob in rj.joins]
            firings: list[Firing] = []
            source = f"f:{rec.partition}"
            if state.applies(source, rec.offset):
                if joined:
                    errors = [0.0 if items[k]["label"] == pred[3] else 1.0 for k, _, pred in joined]
                    firings += state.feed("error", errors, rec.topic, rec.partition, rec.offset)
                state.samples += len(joined)
                state.watermarks[source] = rec.offset
                state.dirty = True
            if joined and rj.status != "o":
                self._publish_samples(state, rec, "f", self._samples_of_feedback(rec, items, joined), done)
            await self._after_record(state, firings, done)
            await asyncio.sleep(0)

    def _samples_of_feedback(self, rec: InRecord, items: list[dict[str, Any]], joined: list[tuple[int, bytes, tuple]]) -> list[Any]:
        if not self.encoder.fast:
            return [
                _sample_dict(items[k]["request_id"], version, features_of(raw), items[k]["label"], predicted, confidence, ppart, poff, rec.partition, rec.offset)
                for k, _, (version, ppart, poff, predicted, confidence, raw) in joined
            ]
        here = samples.location(rec.partition, rec.offset)
        prediction_at: dict[bytes, tuple[bytes, bytes]] = {}
        out = []
        sample = samples.sample
        for k, blob, (version, ppart, poff, predicted, confidence, block) in joined:
            it = items[k]
            key = blob[:PRED_KEY_LEN]
            at = prediction_at.get(key)
            if at is None:
                at = prediction_at[key] = (samples.varint(version), samples.location(ppart, poff))
            out.append(sample(it["request_id"], at[0], block, it["label"], predicted, confidence, at[1], here))
        return out

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

    def _publish_samples(self, state: ModelState, rec: InRecord, kind: str, samples: list[Any], done: Completion) -> None:
        model = state.model
        source = source_id(kind, rec.partition, rec.offset)
        event_id = deterministic_id("samples", rec.topic, rec.partition, rec.offset)
        if self.encoder.fast:
            value = self.encoder.batch(event_id, model, now_ms(), samples)
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

        self.publisher.send(self.topics[SAMPLES], model.encode(), value, completion=done, on_ok=delivered, events=len(samples))

def _sample_dict(
    sample_id: str, version: int, features: list[float], label: int, predicted: int, confidence: float, ppart: int, poff: int, fpart: int, foff: int
) -> dict[str, Any]:
    return {
        "sample_id": sample_id,
        "model_version": version,
        "features": features,
        "label": label,
        "predicted": predicted,
        "confidence": confidence,
        "prediction_partition": ppart,
        "prediction_offset": poff,
        "feedback_partition": fpart,
        "feedback_offset": foff,
    }
