"""The loop as processes: every service that exists runs as ``python -m services.<name>`` on the
session's real Apache Kafka, Redis and Triton, scraped by a Prometheus of our own that loads
``infra/prometheus/rules`` (its own, so rule overrides never touch other suites' Prometheus).

``Loop.drive()`` plays a small drifting workload: digits requests through inference (and
garbage, which must be dead-lettered), labeled samples and an update request (what the drift
service emits; published here when no drift service runs), the trainer's candidate, the
deployer's switch, then a rollback command.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from confluent_kafka import Producer
from sklearn.datasets import load_digits

from infra.local.process import free_port, pid_alive, spawn, stop_pid, wait_until
from infra.local.prometheus import Prometheus
from infra.local.settings import InfraSettings
from services.common import topics
from services.common.artifacts import FileArtifactStore
from services.common.events import (
    Candidate,
    Command,
    Feedback,
    FeedbackBatch,
    InferenceRequest,
    LabeledSample,
    LabeledSampleBatch,
    OffsetRange,
    UpdateRequest,
)
from services.common.kafka import ensure_topics, flush, producer
from services.common.registry import ModelRegistry
from services.common.serde import encode_event
from services.common.settings import KafkaSettings, RedisSettings, TritonSettings
from tests.observability.promql import PromAPI

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("inference", "drift", "trainer", "deployer", "console")
PERMISSIVE_POLICY = {"check_accuracy": False, "check_forgetting": False, "check_latency": False, "canary": "none",
                     "watch_min_samples": 100000}
CONSOLE_PASSWORD = "observability-test-password"


def runnable(name: str) -> bool:
    """A service takes part once its package has a ``__main__``; ``MODELCI_OBS_SKIP`` (comma list)
    leaves some out, e.g. while one is being rewritten in a shared working tree."""
    skipped = {s.strip() for s in os.environ.get("MODELCI_OBS_SKIP", "").split(",") if s.strip()}
    return name not in skipped and importlib.util.find_spec(f"services.{name}.__main__") is not None


@dataclass
class Loop:
    home: Path
    kafka: KafkaSettings
    redis: RedisSettings
    triton: TritonSettings
    prometheus: Prometheus
    model: str
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, int] = field(default_factory=dict)
    producer: Producer | None = None

    @property
    def prom(self) -> PromAPI:
        return PromAPI(self.prometheus.address())

    # --- processes ----------------------------------------------------------------------------
    def env(self, name: str) -> dict[str, str]:
        artifacts = str(self.home / "artifacts")
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MODELCI_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "MODELCI_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
            "MODELCI_REDIS_URL": self.redis.url.get_secret_value(),
            "MODELCI_REDIS_KEY_PREFIX": self.redis.key_prefix,
            "MODELCI_TRITON_HTTP_URL": self.triton.http_url,
            "MODELCI_TRITON_GRPC_URL": self.triton.grpc_url,
            "MODELCI_TRITON_METRICS_URL": self.triton.metrics_url,
            "MODELCI_TRITON_MODEL_REPOSITORY": self.triton.model_repository,
            "MODELCI_METRICS_PORT": str(self.ports[name]),
            "MODELCI_LOG_FORMAT": "json",
            "MODELCI_TRAINER_ARTIFACT_ROOT": artifacts,
            "MODELCI_DEPLOYER_ARTIFACT_ROOT": artifacts,
            "MODELCI_ARTIFACTS_ROOT": artifacts,
            "MODELCI_TRAINER_DEVICE": "cpu",
            "MODELCI_TRAINER_CONTROL_NICE": "0",
            "MODELCI_TRAINER_CONTROL_IDLE_SCHEDULER": "false",
            "MODELCI_TRAINER_CONTROL_WATCH_TRITON": "false",
            "MODELCI_DEPLOYER_POLL_TIMEOUT_S": "0.2",
            "MODELCI_CONSOLE_PORT": str(self.ports[name]),
            "MODELCI_DRIFT_PARTITIONS": "1",
            "MODELCI_DRIFT_MIN_SAMPLES": "60",
            "MODELCI_CONSOLE_ADMIN_PASSWORD": CONSOLE_PASSWORD,
            "MODELCI_CONSOLE_SESSION_SECRET": "observability-test-secret",
        }

    def start(self, name: str) -> None:
        self.ports.setdefault(name, free_port())
        proc = spawn([sys.executable, "-m", f"services.{name}"], log_file=self.home / f"{name}.log",
                     pid_file=self.home / f"{name}.pid", env=self.env(name), cwd=REPO)
        self.procs[name] = proc.pid
        self.prometheus.add_target(name, f"127.0.0.1:{self.ports[name]}")

    def stop(self, name: str) -> None:
        pid = self.procs.pop(name, None)
        if pid is not None:
            stop_pid(pid, timeout_s=20)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def up(self, name: str) -> bool:
        result = self.prom.instant(f'up{{service="{name}"}} == 1')
        return bool(result)

    # --- the model ---------------------------------------------------------------------------
    def register(self) -> None:
        from services.deployer.register import register_model
        from services.deployer.triton_ops import TritonOps
        from strategies.export import export_torchscript
        from strategies.models import make_mlp

        torch.manual_seed(0)
        model = make_mlp(64, 10, hidden=32)
        x, y = digits()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for _ in range(60):  # full-batch steps: ~95% on the first concept, so the drift really hurts
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            optimiser.step()
        artifact = export_torchscript(model.eval(), (64,))
        registry = ModelRegistry(self.redis.client(), self.redis.key_prefix)
        register_model(registry, FileArtifactStore(self.home / "artifacts"), TritonOps(self.triton.http_url, retries=3, backoff_s=0.2),
                       Path(self.triton.model_repository), self.model, artifact, [64], [str(i) for i in range(10)],
                       hyperparameters={"epochs": 3, "lr": 0.01, "batch_size": 32}, policy=PERMISSIVE_POLICY)

    # --- the workload --------------------------------------------------------------------------
    def _send(self, topic: str, value: bytes, partition: int | None = None) -> None:
        assert self.producer is not None
        kw = {"partition": partition} if partition is not None else {}
        self.producer.produce(self.kafka.topic(topic), value, key=self.model.encode(), **kw)

    def requests(self, x: np.ndarray, y: np.ndarray) -> None:
        """Requests, then their feedback (labels), as an application would send them."""
        ids = [uuid.uuid4().hex for _ in range(len(x))]
        for rid, row in zip(ids, x):
            self._send(topics.REQUESTS, encode_event(InferenceRequest(request_id=rid, model=self.model,
                                                                      features=[float(v) for v in row], shape=[64])))
        items = [Feedback(request_id=rid, label=int(label)) for rid, label in zip(ids, y)]
        self._send(topics.FEEDBACK, encode_event(FeedbackBatch(model=self.model, items=items)))
        flush(self.producer)

    def garbage(self, count: int = 3) -> None:
        for i in range(count):
            self._send(topics.REQUESTS, b"not an avro record %d" % i)
        flush(self.producer)

    def update(self, x: np.ndarray, y: np.ndarray) -> None:
        """Labeled samples on cl.samples and an update request over them (the drift service's output)."""
        offsets: list[int] = []

        def delivered(err, msg) -> None:
            assert err is None, err
            offsets.append(msg.offset())

        items = [LabeledSample(sample_id=uuid.uuid4().hex, model_version=1, features=[float(v) for v in row], label=int(label),
                               predicted=0, confidence=0.5, prediction_partition=0, prediction_offset=i, feedback_partition=0,
                               feedback_offset=i) for i, (row, label) in enumerate(zip(x, y))]
        assert self.producer is not None
        for start in range(0, len(items), 50):
            batch = LabeledSampleBatch(model=self.model, items=items[start:start + 50])
            self.producer.produce(self.kafka.topic(topics.SAMPLES), encode_event(batch), key=self.model.encode(), partition=0,
                                  on_delivery=delivered)
        flush(self.producer)
        request = UpdateRequest(model=self.model, base_version=1, reason="drift",
                                sample_ranges=[OffsetRange(partition=0, start=min(offsets), end=max(offsets) + 1)])
        self._send(topics.UPDATES, encode_event(request), partition=0)
        flush(self.producer)

    def failing_update(self) -> None:
        """An update request on a base version that does not exist: the trainer fails it."""
        self._send(topics.UPDATES, encode_event(UpdateRequest(model=self.model, base_version=99, reason="manual", sample_ranges=[
            OffsetRange(partition=0, start=0, end=1)])), partition=0)
        flush(self.producer)

    def corrupt_candidate(self) -> None:
        """A candidate whose stored artifact does not match its digest: the gate rejects it."""
        from services.common.registry import VersionRecord, VersionStatus

        uri, _ = FileArtifactStore(self.home / "artifacts").put(b"not a TorchScript archive")
        registry = ModelRegistry(self.redis.client(), self.redis.key_prefix)
        version = registry.next_version(self.model)
        registry.put_version(VersionRecord(model=self.model, version=version, status=VersionStatus.CANDIDATE, artifact_uri=uri,
                                           artifact_sha256="0" * 64, base_version=1, strategy="replay"))
        self._send(topics.CANDIDATES, encode_event(Candidate(update_id=uuid.uuid4().hex, model=self.model, outcome="succeeded",
                                                             base_version=1, strategy="replay", code_version="test", version=version,
                                                             artifact_uri=uri, artifact_sha256="0" * 64)))
        flush(self.producer)

    def rollback(self, to_version: int = 1) -> None:
        self._send(topics.COMMANDS, encode_event(Command(model=self.model, action="rollback", actor="observability-test",
                                                         version=to_version)))
        flush(self.producer)


def digits(drifted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits; the drifted concept turns the images a quarter (a new sensor mounting)."""
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    if drifted:
        x = np.rot90(x.reshape(-1, 8, 8), axes=(1, 2)).reshape(-1, 64).copy()
    return x, data.target.astype(np.int64)


def make_loop(home: Path, kafka_address: str, redis_url: str, triton: TritonSettings) -> Loop:
    unique = uuid.uuid4().hex[:8]
    settings = InfraSettings(run_dir=home, prometheus_port=free_port(), prometheus_scrape_interval="1s")
    loop = Loop(home=home, kafka=KafkaSettings(bootstrap_servers=kafka_address, topic_prefix=f"obs{unique}."),
                redis=RedisSettings(url=redis_url, key_prefix=f"obs{unique}:"), triton=triton,
                prometheus=Prometheus(settings), model=f"obs{unique}")
    ensure_topics(loop.kafka, {t: 1 for t in (topics.REQUESTS, topics.PREDICTIONS, topics.FEEDBACK, topics.SAMPLES, topics.DRIFT,
                                              topics.UPDATES, topics.CANDIDATES, topics.DEPLOYMENTS, topics.COMMANDS)}
                  | {topics.dlq(t): 1 for t in (topics.REQUESTS, topics.PREDICTIONS, topics.FEEDBACK, topics.SAMPLES,
                                                topics.UPDATES, topics.CANDIDATES, topics.COMMANDS)})
    loop.producer = producer(loop.kafka)
    return loop


def wait_for(check, timeout_s: float, what: str, loop: Loop, service: str | None = None) -> None:
    """wait_until with the services' logs in the failure message; fails at once if one died."""
    try:
        wait_until(check, timeout_s, what, alive=lambda: all(pid_alive(pid) for pid in loop.procs.values()))
    except Exception as exc:
        dead = [n for n, pid in loop.procs.items() if not pid_alive(pid)]
        tail = "\n".join(f"--- {n}\n{loop.log_tail(n)}" for n in dict.fromkeys(dead + ([service] if service else list(loop.procs))))
        raise AssertionError(f"{exc}\n{tail}") from exc
