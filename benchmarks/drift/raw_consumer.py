"""The baseline of ``modelci bench drift``: a bare confluent-kafka consumer that only decodes.

Run as its own process (``python -m benchmarks.drift.raw_consumer N [serde|scan]``) so that
it gets one core like the drift worker does. Tuned fairly: large prefetch
(``queued.min.messages``), large fetches, no commits. ``serde`` (the benchmark's baseline)
decodes every record into its event with the project's serde, as any consumer of the topics
does; ``scan`` reads them with the drift service's own compiled reader
(`services.drift.columns.BatchReader`), which decodes only what the service needs.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

from confluent_kafka import Consumer

from services.common.serde import default_serde
from services.common.settings import KafkaSettings
from services.common.topics import FEEDBACK, PREDICTIONS
from services.drift.columns import BatchReader


def consume(kafka: KafkaSettings, expected_events: int, timeout_s: float = 300.0, decoder: str = "serde") -> dict:
    serde = default_serde()
    reader = BatchReader(serde)
    consumer = Consumer(
        kafka.confluent_config(
            **{
                "group.id": f"raw-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "queued.min.messages": 1000000,
                "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 10485760,
                "session.timeout.ms": kafka.session_timeout_ms,
                "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
            }
        )
    )
    topics = {kafka.topic(PREDICTIONS): "PredictionBatch", kafka.topic(FEEDBACK): "FeedbackBatch"}
    consumer.subscribe(list(topics))
    events = records = 0
    first = last = None
    cpu_first = cpu_last = 0.0
    deadline = time.monotonic() + timeout_s
    decode = serde.decode
    if decoder == "scan":
        read = {kafka.topic(PREDICTIONS): reader.predictions, kafka.topic(FEEDBACK): reader.feedback}
    try:
        while events < expected_events and time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.5)
            for msg in batch:
                if msg.error():
                    continue
                if first is None:
                    first = time.perf_counter()
                    cpu_first = time.process_time()
                if decoder == "scan":
                    events += read[msg.topic()](msg.value(), msg.partition(), msg.offset()).n
                else:
                    events += len(decode(topics[msg.topic()], msg.value())["items"])
                records += 1
            if batch:
                last = time.perf_counter()
                cpu_last = time.process_time()
    finally:
        consumer.close()
    seconds = (last - first) if first is not None and last is not None else 0.0
    return {
        "events": events,
        "records": records,
        "seconds": seconds,
        "eps": events / seconds if seconds else 0.0,
        "cpu_us_per_event": (cpu_last - cpu_first) / events * 1e6 if events else 0.0,
    }


if __name__ == "__main__":
    kafka = KafkaSettings()
    print(json.dumps(consume(kafka, int(sys.argv[1]), decoder=sys.argv[2] if len(sys.argv) > 2 else "serde")))
