"""Fixtures of the trainer suite: a registered model, samples on the real broker, a running trainer."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from confluent_kafka import Consumer, Producer, TopicPartition
from sklearn.datasets import load_digits

from infra.local.process import wait_until
from services.common import topics
from services.common.artifacts import FileArtifactStore
from services.common.events import Candidate, LabeledSample, LabeledSampleBatch, OffsetRange, UpdateRequest
from services.common.kafka import ensure_topics, flush, producer
from services.common.registry import ModelRecord, ModelRegistry, VersionRecord, VersionStatus
from services.common.serde import decode_event, encode_event
from services.common.settings import KafkaSettings, RedisSettings
from services.trainer.app import TrainerApp
from services.trainer.settings import InterferenceSettings, TrainerSettings

torch.set_num_threads(1)

MODEL = "digits"
SHAPE = [64]
CLASSES = [str(i) for i in range(10)]


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


@dataclass
class TrainerEnv:
    kafka: KafkaSettings
    redis: RedisSettings
    root: Path
    registry: ModelRegistry
    store: FileArtifactStore
    producer: Producer
    apps: list[tuple[TrainerApp, threading.Thread]] = field(default_factory=list)

    def settings(self, **control) -> TrainerSettings:
        return TrainerSettings(
            group_id=f"trainer-{uuid.uuid4().hex[:8]}",
            artifact_root=str(self.root / "artifacts"),
            device="cpu",
            sample_read_timeout_s=60,
            kafka=self.kafka,
            redis=self.redis,
            control=InterferenceSettings(watch_triton=False, **control),
        )

    def register(self, name: str = MODEL, hyperparameters: dict | None = None, strategy: str = "replay") -> None:
        from strategies.export import export_torchscript
        from strategies.models import make_mlp

        torch.manual_seed(0)
        uri, sha = self.store.put(export_torchscript(make_mlp(64, 10, hidden=32), (64,)))
        hp = {"epochs": 10, "lr": 0.01, "batch_size": 32} if hyperparameters is None else hyperparameters
        self.registry.put_model(ModelRecord(name, SHAPE, CLASSES, strategy=strategy, hyperparameters=hp, serving_version=1))
        self.registry.put_version(
            VersionRecord(model=name, version=1, status=VersionStatus.SERVING, artifact_uri=uri, artifact_sha256=sha)
        )

    def register_architecture(self, name: str, architecture, input_shape: list[int], hyperparameters: dict | None = None,
                              strategy: str = "replay", datatype: str = "FP32", classes: list[str] | None = None) -> torch.nn.Module:
        """Registers ``architecture`` as registration leaves it: its weights beside version 1's export."""
        from services.common.registry import WEIGHTS_SHA256, WEIGHTS_URI
        from strategies.export import export_torchscript
        from services.trainer.weights import dump_state

        torch.manual_seed(0)
        module = architecture.build().eval()
        uri, sha = self.store.put(export_torchscript(module, tuple(input_shape), architecture.output, datatype=datatype))
        weights_uri, weights_sha = self.store.put(dump_state(module.state_dict()), suffix=".weights.pt")
        hp = {"epochs": 10, "lr": 0.01, "batch_size": 32} if hyperparameters is None else hyperparameters
        self.registry.put_model(ModelRecord(name, input_shape, classes or CLASSES, strategy=strategy, hyperparameters=hp, serving_version=1,
                                            architecture=architecture.as_dict(), datatype=datatype))
        self.registry.put_version(VersionRecord(model=name, version=1, status=VersionStatus.SERVING, artifact_uri=uri, artifact_sha256=sha,
                                                report={WEIGHTS_URI: weights_uri, WEIGHTS_SHA256: weights_sha}))
        return module

    def publish_samples(
        self, x, y, prefix: str, model: str = MODEL, per_record: int = 50, features=None, topic: str = topics.SAMPLES
    ) -> OffsetRange:
        """Publishes samples to partition 0 of ``topic``; returns their offset range."""
        # The range comes from the high watermark before and after (this test alone writes the
        # topic): delivery reports of an idempotent producer can lack the offset after a retry.
        first = self.count(topic)

        def delivered(err, msg) -> None:
            assert err is None, err

        items = [
            LabeledSample(
                sample_id=f"{prefix}-{i}",
                model_version=1,
                features=[] if np.issubdtype(np.asarray(x).dtype, np.integer) else [float(v) for v in (x[i] if features is None else features[i])],
                int_features=[int(v) for v in np.asarray(x[i]).reshape(-1)] if np.issubdtype(np.asarray(x).dtype, np.integer) else [],
                label=int(y[i]),
                predicted=0,
                confidence=0.5,
                prediction_partition=0,
                prediction_offset=i,
                feedback_partition=0,
                feedback_offset=i,
            )
            for i in range(len(y))
        ]
        for start in range(0, len(items), per_record):
            batch = LabeledSampleBatch(model=model, items=items[start : start + per_record])
            self.producer.produce(self.kafka.topic(topic), encode_event(batch), key=model.encode(), partition=0, on_delivery=delivered)
        flush(self.producer)
        return OffsetRange(partition=0, start=first, end=self.count(topic))

    def request(self, ranges: list[OffsetRange], model: str = MODEL, **kw) -> UpdateRequest:
        req = UpdateRequest(model=model, base_version=kw.pop("base_version", 1), reason="manual", sample_ranges=ranges, **kw)
        self.send(encode_event(req), model)
        return req

    def send(self, value: bytes, key: str = MODEL) -> None:
        self.producer.produce(self.kafka.topic(topics.UPDATES), value, key=key.encode(), partition=0)
        flush(self.producer)

    def start(self, settings: TrainerSettings | None = None) -> TrainerApp:
        app = TrainerApp(settings or self.settings()).build()
        thread = threading.Thread(target=app.run, name="trainer", daemon=True)
        thread.start()
        self.apps.append((app, thread))
        return app

    def stop(self, app: TrainerApp) -> None:
        for a, thread in self.apps:
            if a is app:
                a.stop.set()
                thread.join(timeout=60)
                assert not thread.is_alive(), "trainer did not stop"

    def candidates(self, count: int, timeout_s: float = 240.0, topic: str = topics.CANDIDATES) -> list[Candidate]:
        """Reads cl.candidates from the beginning until ``count`` candidates are there."""
        cons = Consumer(self.kafka.confluent_config(**{"group.id": f"c-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}))
        cons.assign([TopicPartition(self.kafka.topic(topic), 0, 0)])
        found: list[Candidate] = []

        def enough() -> bool:
            msg = cons.poll(0.5)
            if msg is not None and not msg.error():
                found.append(decode_event(Candidate, msg.value()) if topic == topics.CANDIDATES else msg)
            return len(found) >= count

        try:
            wait_until(enough, timeout_s, f"{count} records on {topic}")
        finally:
            cons.close()
        return found

    def count(self, topic: str) -> int:
        """Records in partition 0 of ``topic`` (its high watermark: the topics start empty)."""
        cons = Consumer(self.kafka.confluent_config(**{"group.id": f"w-{uuid.uuid4().hex[:6]}"}))
        high: list[int] = []
        try:  # a topic created a moment ago may not have a known leader yet
            tp = TopicPartition(self.kafka.topic(topic), 0)
            wait_until(lambda: high.append(cons.get_watermark_offsets(tp, timeout=10)[1]) is None, 60, f"offsets of {topic}")
            return high[-1]
        finally:
            cons.close()

    def lock_free(self, model: str = MODEL) -> bool:
        return self.registry.r.get(f"{self.redis.key_prefix}trainer:lock:{model}") is None


@pytest.fixture
def env(kafka_settings: KafkaSettings, redis_settings: RedisSettings, tmp_path: Path) -> Iterator[TrainerEnv]:
    ensure_topics(kafka_settings, {topics.SAMPLES: 1, topics.UPDATES: 1, topics.CANDIDATES: 1, topics.dlq(topics.UPDATES): 1})
    client = redis_settings.client()
    store = FileArtifactStore(tmp_path / "artifacts")
    e = TrainerEnv(kafka_settings, redis_settings, tmp_path, ModelRegistry(client, redis_settings.key_prefix), store, producer(kafka_settings))
    yield e
    for app, thread in e.apps:
        app.stop.set()
        thread.join(timeout=60)
    client.close()

