"""Reads the labeled samples an update request names, straight from ``cl.samples`` by offset.

No consumer group: the request says exactly which offsets to learn from (lineage), so the reader
assigns those partitions at those offsets and stops at each range's end. Samples repeat when the
join re-publishes after a restart, so they are deduplicated by ``sample_id``; samples that cannot
be trained on (NaN, wrong length, label outside the classes) are skipped and counted, never fatal.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import numpy as np
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from services.common.errors import SerdeError, TransientError
from services.common.events import LabeledSampleBatch, OffsetRange
from services.common.serde import decode_event
from services.common.settings import KafkaSettings
from services.common.tensors import InputSpec
from services.trainer import errors
from services.trainer.sample_set import SampleSet


def _validate(ranges: list[OffsetRange]) -> None:
    for r in ranges:
        if r.start < 0 or r.end < r.start or r.partition < 0:
            raise errors.UpdateFailed(errors.OFFSETS_OUT_OF_RANGE, f"invalid range {r}")


class SampleReader:
    """Reads ranges of a samples topic with a plain assigned consumer (no group, no commits)."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float = 60.0, eof_grace_s: float = 5.0) -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self.eof_grace_s = eof_grace_s

    def _consumer(self) -> Consumer:
        return Consumer(
            self.kafka.confluent_config(
                **{
                    # librdkafka wants a group id even for assign(); nothing is ever committed to it.
                    "group.id": f"modelci-trainer-reader-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "error",
                    "enable.partition.eof": True,
                }
            )
        )

    def read(self, topic_name: str, ranges: list[OffsetRange], model: str, input: InputSpec | Sequence[int], num_classes: int) -> SampleSet:
        """The model's usable samples in ``ranges``; ``input`` is its declared input (a bare shape: FP32)."""
        _validate(ranges)
        wanted = [r for r in ranges if r.end > r.start]
        if not wanted:
            raise errors.UpdateFailed(errors.NO_SAMPLES, "the request names no offsets")
        topic = self.kafka.topic(topic_name)
        cons = self._consumer()
        try:
            return self._read(cons, topic, wanted, model, InputSpec.of(input), num_classes)
        finally:
            cons.close()

    def _read(self, cons: Consumer, topic: str, ranges: list[OffsetRange], model: str, spec: InputSpec, num_classes: int) -> SampleSet:
        meta = cons.list_topics(topic, timeout=10)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise errors.UpdateFailed(errors.OFFSETS_OUT_OF_RANGE, f"topic {topic} does not exist")
        by_partition: dict[int, list[OffsetRange]] = {}
        for r in ranges:
            if r.partition not in tmeta.partitions:
                raise errors.UpdateFailed(errors.OFFSETS_OUT_OF_RANGE, f"{topic} has no partition {r.partition}")
            # Only the low watermark is trusted: Tansu (the embedded broker) reports a wrong high
            # watermark, so a range that ends past the data is caught while reading instead.
            try:
                lo, _hi = cons.get_watermark_offsets(TopicPartition(topic, r.partition), timeout=10)
            except KafkaException as exc:  # leader moving or not known yet: try the request again later
                raise TransientError(f"offsets of {topic}[{r.partition}] unavailable: {exc}") from exc
            if r.start < lo:
                raise errors.UpdateFailed(
                    errors.OFFSETS_OUT_OF_RANGE,
                    f"{topic}[{r.partition}] [{r.start}, {r.end}) starts before the retained offsets (from {lo})",
                )
            by_partition.setdefault(r.partition, []).append(r)
        width = spec.size
        seen: set[str] = set()
        ids: list[str] = []
        rows: list[list[float]] | list[list[int]] = []
        labels: list[int] = []
        skipped: Counter = Counter()

        def accept(msg_value: bytes, partition: int, offset: int) -> None:
            try:
                batch = decode_event(LabeledSampleBatch, msg_value, topic=topic, partition=partition, offset=offset)
            except SerdeError:
                skipped["undecodable"] += 1
                return
            if batch.model != model:
                skipped["other_model"] += len(batch.items)
                return
            for s in batch.items:
                values = spec.rows_of(s.features, s.int_features)
                if s.sample_id in seen:
                    skipped["duplicate"] += 1
                elif len(values) != width:
                    skipped["wrong_shape"] += 1
                elif not spec.integer and not all(math.isfinite(v) for v in values):
                    skipped["nan"] += 1
                elif not 0 <= s.label < num_classes:
                    skipped["bad_label"] += 1
                else:
                    seen.add(s.sample_id)
                    ids.append(s.sample_id)
                    rows.append(values)
                    labels.append(s.label)

        deadline = time.monotonic() + self.timeout_s
        for partition, parts in sorted(by_partition.items()):
            for r in sorted(parts, key=lambda r: r.start):
                cons.assign([TopicPartition(topic, partition, r.start)])
                next_offset = r.start
                eof_since: float | None = None
                while next_offset < r.end:
                    if time.monotonic() > deadline:
                        raise TransientError(f"reading {topic}[{partition}] stalled at offset {next_offset}")
                    msg = cons.poll(0.5)
                    if msg is None:
                        # librdkafka reports the end of a partition once; data may still be in
                        # flight, so the range is declared beyond the end only after a grace period.
                        if eof_since is not None and time.monotonic() - eof_since > self.eof_grace_s:
                            raise errors.UpdateFailed(
                                errors.OFFSETS_OUT_OF_RANGE,
                                f"{topic}[{partition}] ends at {next_offset}, before the requested end {r.end}",
                            )
                        continue
                    if msg.error():
                        code = msg.error().code()
                        if code == KafkaError._PARTITION_EOF:
                            # Compaction or transaction markers can leave holes: the end is reached.
                            if msg.offset() >= r.end or msg.offset() == OFFSET_INVALID:
                                break
                            eof_since = eof_since or time.monotonic()
                            if time.monotonic() - eof_since > self.eof_grace_s:
                                raise errors.UpdateFailed(
                                    errors.OFFSETS_OUT_OF_RANGE,
                                    f"{topic}[{partition}] ends at {msg.offset()}, before the requested end {r.end}",
                                )
                            continue
                        eof_since = None
                        if code == KafkaError.OFFSET_OUT_OF_RANGE or code == KafkaError._AUTO_OFFSET_RESET:
                            raise errors.UpdateFailed(errors.OFFSETS_OUT_OF_RANGE, f"{topic}[{partition}]@{next_offset}: {msg.error()}")
                        raise TransientError(f"reading {topic}[{partition}]: {msg.error()}")
                    if msg.offset() >= r.end:
                        break
                    accept(msg.value(), partition, msg.offset())
                    next_offset = msg.offset() + 1
                cons.unassign()
        if not ids:
            raise errors.UpdateFailed(errors.NO_SAMPLES, f"no usable samples in the ranges (skipped: {dict(skipped)})")
        x = np.asarray(rows, dtype=spec.compute_dtype).reshape(len(rows), *spec.shape)
        return SampleSet(ids, x, np.asarray(labels, dtype=np.int64), skipped)


