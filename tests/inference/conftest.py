"""Fixtures of the inference suites: a TorchScript MLP published to Triton, a worker running
in a thread, and a reader that collects what the worker publishes."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from services.common.events import Event
from services.common.serde import decode_event
from services.common.settings import KafkaSettings, TritonSettings
from services.common.triton_repo import ModelSpec, write_configs, write_version
from services.inference.metrics import InferenceMetrics
from services.inference.settings import InferenceSettings
from services.inference.worker import InferenceWorker

FEATURES, CLASSES = 8, 3


class GuardedMLP(torch.nn.Module):
    """8 features -> 3 class probabilities; refuses NaN inputs, so Triton fails such a request."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(torch.isnan(x).any()):
            raise RuntimeError("NaN in input")
        return torch.softmax(self.net(x), dim=1)


def make_model(seed: int) -> torch.jit.ScriptModule:
    torch.manual_seed(seed)
    return torch.jit.script(GuardedMLP().eval())


def publish_model(repository: Path, http_url: str, name: str, version: int, module: torch.jit.ScriptModule) -> None:
    """Writes ``module`` as ``version`` of ``name`` into the repository and has Triton load it."""
    import tritonclient.http as httpclient

    buf = io.BytesIO()
    torch.jit.save(module, buf)
    write_configs(Path(repository), ModelSpec(name, (FEATURES,), CLASSES))
    write_version(Path(repository), name, version, buf.getvalue())
    client = httpclient.InferenceServerClient(http_url, network_timeout=60.0, connection_timeout=60.0)
    try:
        client.load_model(name)
    finally:
        client.close()


def local_scores(module: torch.jit.ScriptModule, features: list[float]) -> list[float]:
    with torch.inference_mode():
        return module(torch.tensor([features], dtype=torch.float32))[0].tolist()


@pytest.fixture
def model_name() -> str:
    return f"mlp_{uuid.uuid4().hex[:8]}"


def inference_settings(kafka: KafkaSettings, triton: TritonSettings, **overrides: Any) -> InferenceSettings:
    defaults: dict[str, Any] = {
        "group_id": f"inference-{uuid.uuid4().hex[:8]}",
        "batch_size": 32,
        "batch_deadline_ms": 20,
        "retry_initial_ms": 50,
        "retry_max_ms": 500,
        "statistics_interval_ms": 500,
        "shutdown_timeout_s": 10,
        "topic_partitions": 2,
    }
    return InferenceSettings(kafka=kafka, triton=triton, **{**defaults, **overrides})


@contextmanager
def running_worker(settings: InferenceSettings, metrics: InferenceMetrics | None = None) -> Iterator[InferenceWorker]:
    """An `InferenceWorker` on a thread, yielded once it holds its partitions; stopped gracefully."""
    worker = InferenceWorker(settings, metrics)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # surfaced in the test below
            failures.append(exc)

    thread = threading.Thread(target=run, name="inference-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not worker.assigned.wait(0.1):
        assert thread.is_alive(), f"worker died while starting: {failures}"
        assert time.monotonic() < deadline, "worker got no partitions within 60 s"
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(60)
        assert not thread.is_alive(), "worker did not stop within 60 s"
        if failures:
            raise failures[0]


class TopicReader:
    """Reads a whole topic from the beginning (no consumer group) and decodes its records."""

    def __init__(self, kafka: KafkaSettings, topic: str, cls: type[Event]) -> None:
        self.cls = cls
        self.topic = topic
        self.records: list[tuple[bytes | None, Any]] = []
        self.consumer = Consumer(kafka.confluent_config(**{"group.id": f"reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}))
        self.assigned = False

    def _assign(self) -> None:
        """Assigns every partition once the topic exists (a worker may not have created it yet)."""
        meta = self.consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is not None and meta.error is None and meta.partitions:
            self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in meta.partitions])
            self.assigned = True
        else:
            time.sleep(0.2)

    def read_until(self, done: Callable[[list[Any]], bool], timeout_s: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while not done([value for _, value in self.records]):
            assert time.monotonic() < deadline, f"gave up after {timeout_s:.0f} s with {len(self.records)} records"
            if not self.assigned:
                self._assign()
                continue
            for msg in self.consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() is None:
                    self.records.append((msg.key(), decode_event(self.cls, msg.value())))
        return [value for _, value in self.records]

    def close(self) -> None:
        self.consumer.close()


def predictions_by_request(batches: list[Any]) -> dict[str, list[tuple[int, Any]]]:
    """request_id -> [(version, Prediction), ...] over PredictionBatch records."""
    out: dict[str, list[tuple[int, Any]]] = {}
    for batch in batches:
        for pred in batch.items:
            out.setdefault(pred.request_id, []).append((batch.version, pred))
    return out
