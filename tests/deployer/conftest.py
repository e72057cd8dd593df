"""Fixtures of the deployer's suite: tiny models, a registered model, a deployer core or app.

Everything runs against the session's real Triton, Redis and Apache Kafka; each test gets its
own model name (the Triton server is shared), key prefix and topic prefix.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from services.common.artifacts import FileArtifactStore
from services.common.events import DeploymentEvent, LabeledSample, LabeledSampleBatch
from services.common.registry import ModelRegistry
from services.deployer.app import DeployerApp, build_deployer
from services.deployer.core import Deployer
from services.deployer.register import register_model
from services.deployer.settings import DeployerSettings
from services.deployer.triton_ops import TritonOps
from tests.deployer import models

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained() -> dict[str, bytes]:
    """Artifacts trained once per session: two good models of concept A, a poisoned one, and the
    second good one slowed down."""
    x, y = models.dataset(600, "a", seed=1)
    good1 = models.train(x, y, seed=1)
    good2 = models.train(x, y, seed=2)
    poisoned = models.train(x, (y + 1) % models.CLASSES, seed=3)
    return {"v1": models.script(good1), "good": models.script(good2), "poisoned": models.script(poisoned),
            "slow": models.script(models.Slow(good2))}


@pytest.fixture
def settings(kafka_settings, redis_settings, triton_settings, tmp_path: Path) -> DeployerSettings:
    return DeployerSettings(
        kafka=kafka_settings,
        redis=redis_settings,
        triton=triton_settings,
        artifact_root=str(tmp_path / "artifacts"),
        group_id=f"deployer-{uuid.uuid4().hex[:8]}",
        triton_retries=3,
        triton_backoff_s=0.2,
        poll_timeout_s=0.2,
    )


@pytest.fixture
def model_name(request: pytest.FixtureRequest, triton_settings) -> Iterator[str]:
    name = f"m{uuid.uuid4().hex[:8]}"
    yield name
    ops = TritonOps(triton_settings.http_url)
    try:  # free the stub processes: the Triton server is shared by the whole session
        ops.unload(name)
    except Exception:
        pass


@dataclass
class Env:
    settings: DeployerSettings
    name: str
    registry: ModelRegistry
    store: FileArtifactStore
    triton: TritonOps
    events: list[DeploymentEvent] = field(default_factory=list)
    deployer: Deployer | None = None

    @property
    def repository(self) -> Path:
        return Path(self.settings.triton.model_repository)

    def register(self, artifact: bytes, policy: dict | None = None) -> None:
        register_model(self.registry, self.store, self.triton, self.repository, self.name, artifact,
                       [models.DIM], [str(c) for c in range(models.CLASSES)], policy=policy, architecture=models.ARCHITECTURE)

    def unpinned(self, x: np.ndarray) -> np.ndarray:
        return self.triton.infer(self.name, x)

    def pinned(self, x: np.ndarray, version: int) -> np.ndarray:
        return self.triton.infer(self.name, x, version)


@pytest.fixture
def env(settings: DeployerSettings, model_name: str) -> Env:
    e = Env(settings, model_name, ModelRegistry(settings.redis.client(), settings.redis.key_prefix),
            FileArtifactStore(settings.artifact_root), TritonOps(settings.triton.http_url, retries=3, backoff_s=0.2,
                                                                     grpc_url=settings.triton.grpc_url))
    e.deployer = build_deployer(settings, e.events.append)
    return e


def sample_batch(model: str, x: np.ndarray, y: np.ndarray, version: int, predicted: np.ndarray | None = None) -> LabeledSampleBatch:
    predicted = y if predicted is None else predicted
    items = [
        LabeledSample(sample_id=uuid.uuid4().hex, model_version=version, features=[float(v) for v in row], label=int(lab),
                      predicted=int(p), confidence=0.9, prediction_partition=0, prediction_offset=i, feedback_partition=0,
                      feedback_offset=i)
        for i, (row, lab, p) in enumerate(zip(x, y, predicted))
    ]
    return LabeledSampleBatch(model=model, items=items)


@pytest.fixture
def start_app(settings: DeployerSettings) -> Iterator:
    """Starts the deployer service in a thread when called (after the test registered its model)."""
    started: list[tuple[DeployerApp, threading.Thread]] = []

    def start() -> DeployerApp:
        app = DeployerApp(settings)
        thread = threading.Thread(target=app.run, name="deployer", daemon=True)
        thread.start()
        started.append((app, thread))
        return app

    yield start
    for app, thread in started:
        app.stop_event.set()
        thread.join(30)
