"""Drift workers as real processes against the suites' Apache Kafka and Redis.

Each test gets unique topic and key prefixes (from the shared fixtures); workers are started
with ``python -m services.drift`` and ``MODELCI_*`` pointing at them, and are killed by PID at
the end of the test if still alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.local.process import free_port
from services.common.kafka import ensure_topics
from services.common.serde import default_serde
from services.common.settings import KafkaSettings, RedisSettings
from benchmarks.drift.throughput import _metric, scrape
from benchmarks.drift.workload import TrafficPublisher
from services.drift.settings import DriftSettings
from services.drift.worker import topic_plan

REPO = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


class Worker:
    """One ``python -m services.drift`` process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "MODELCI_METRICS_PORT": str(self.port)}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.drift"], env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def metrics(self) -> dict[str, float]:
        if not self.alive():
            raise AssertionError(f"drift worker exited with {self.proc.returncode if self.proc else None}; log: {self.log.read_text()[-3000:]}")
        try:
            return scrape(self.port)
        except OSError:
            return {}

    def value(self, name: str, **labels: str) -> float:
        return _metric(self.metrics(), name, **labels)


@dataclass
class DriftStack:
    kafka: KafkaSettings
    redis: RedisSettings
    tmp: Path
    overrides: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MODELCI_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                "MODELCI_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
                "MODELCI_REDIS_URL": self.redis.url.get_secret_value(),
                "MODELCI_REDIS_KEY_PREFIX": self.redis.key_prefix,
                "MODELCI_LOG_LEVEL": "INFO",
                "MODELCI_DRIFT_SNAPSHOT_INTERVAL_S": "0.5",
                "MODELCI_DRIFT_SWEEP_INTERVAL_S": "1",
                "MODELCI_DRIFT_MIN_SAMPLES": "300",
                "MODELCI_DRIFT_COOLDOWN_S": "3600",
                "PYTHONPATH": str(REPO),
            }
        )
        env.update(self.overrides)
        env.update(extra)
        return env

    def worker(self, **extra: str) -> Worker:
        worker = Worker(self.env(**extra), self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker.start()

    def publisher(self) -> TrafficPublisher:
        return TrafficPublisher(self.kafka)

    # --- reading results ------------------------------------------------------------------------
    def read(self, logical: str, event: str) -> list[tuple[int, int, dict[str, Any]]]:
        """Every record now in a topic: (partition, offset, decoded record)."""
        return read_topic(self.kafka, logical, event)

    def redis_client(self):
        return self.redis.client()

    def stats(self, model: str) -> dict[str, int]:
        client = self.redis_client()
        try:
            raw = client.hgetall(f"{self.redis.key_prefix}drift:{{{model}}}:stats")
            return {k.decode(): int(v) for k, v in raw.items()}
        finally:
            client.close()

    def state(self, model: str) -> dict[str, Any] | None:
        client = self.redis_client()
        try:
            raw = client.get(f"{self.redis.key_prefix}drift:{{{model}}}:state")
            return json.loads(raw) if raw else None
        finally:
            client.close()

    def samples(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """sample_id -> [(batch event_id, sample), ...] for every copy in cl.samples."""
        out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for _p, _o, batch in self.read("cl.samples", "LabeledSampleBatch"):
            for item in batch["items"]:
                out.setdefault(item["sample_id"], []).append((batch["event_id"], item))
        return out


def read_topic(kafka: KafkaSettings, logical: str, event: str) -> list[tuple[int, int, dict[str, Any]]]:
    serde = default_serde()
    topic = kafka.topic(logical)
    consumer = Consumer(kafka.confluent_config(**{"group.id": f"reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out = []
        deadline = time.monotonic() + 60
        remaining = dict(ends)
        while remaining and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.partition(), msg.offset(), serde.decode(event, msg.value())))
            if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                remaining.pop(msg.partition(), None)
        return out
    finally:
        consumer.close()


@pytest.fixture
def drift_stack(kafka_settings: KafkaSettings, redis_settings: RedisSettings, tmp_path: Path) -> Iterator[DriftStack]:
    ensure_topics(kafka_settings, topic_plan(DriftSettings(kafka=kafka_settings)))
    stack = DriftStack(kafka_settings, redis_settings, tmp_path)
    try:
        yield stack
    finally:
        for worker in stack.workers:
            worker.kill()
