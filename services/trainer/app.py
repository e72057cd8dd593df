"""Composition root of the trainer: settings, clients, metrics, signals, the loop.

``python -m services.trainer`` runs `main`. SIGTERM/SIGINT set a stop flag: the loop stops
polling, an update in progress stops at its next training step (its request stays uncommitted,
so another trainer redoes it) and clients are closed.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field

import structlog

from services.common import topics
from services.common.artifacts import FileArtifactStore
from services.common.kafka import consumer, ensure_topics, producer
from services.common.logs import configure
from services.common.metrics import serve
from services.common.registry import ModelRegistry
from services.trainer.consumer import DoneSet, UpdateLoop
from services.trainer.control import TritonLoad, apply_process_limits
from services.trainer.core import Trainer, choose_device
from services.trainer.metrics import TrainerMetrics
from services.trainer.samples import SampleReader
from services.trainer.settings import TrainerSettings
from services.trainer.state import StrategyStateStore

_log = structlog.get_logger("modelci.trainer")


@dataclass
class TrainerApp:
    """Everything one trainer process owns; `run` blocks until `stop` is set."""

    settings: TrainerSettings
    stop: threading.Event = field(default_factory=threading.Event)
    metrics: TrainerMetrics = field(default_factory=TrainerMetrics)
    metrics_port: int | None = None

    def build(self) -> "TrainerApp":
        s = self.settings
        self.device = choose_device(s.device)
        self.redis = s.redis.client()
        self.store = FileArtifactStore(s.artifact_root)
        self.load = None
        if s.control.enabled and s.control.watch_triton:
            url = s.control.triton_metrics_url or s.triton.metrics_url
            self.load = TritonLoad.from_settings(url, s.control).start()
            load = self.load
            self.metrics.serving_busy.set_function(lambda: float(load.busy))
        self.trainer = Trainer(
            settings=s,
            registry=ModelRegistry(self.redis, s.redis.key_prefix),
            store=self.store,
            states=StrategyStateStore(self.redis, self.store, s.redis.key_prefix),
            reader=SampleReader(s.kafka, s.sample_read_timeout_s),
            redis=self.redis,
            metrics=self.metrics,
            device=self.device,
            load=self.load,
        )
        self.metrics.device_info.labels(str(self.device)).set(1)
        ensure_topics(s.kafka, {topics.UPDATES: 3, topics.CANDIDATES: 3, topics.dlq(topics.UPDATES): 1})
        self.consumer = consumer(s.kafka, s.group_id, **{"max.poll.interval.ms": 3_600_000})
        self.producer = producer(s.kafka)
        self.loop = UpdateLoop(
            s.kafka,
            self.consumer,
            self.producer,
            self.trainer,
            DoneSet(self.redis, s.redis.key_prefix),
            self.metrics,
            s.poll_timeout_s,
        )
        # Import Avalanche and the strategies now, not inside the first update: it takes seconds,
        # and drift onset to a serving update is the figure the trainer exists for.
        from strategies.registry import available

        _log.info("trainer_ready", device=str(self.device), code_version=self.trainer.code, strategies=available())
        return self

    def run(self) -> None:
        try:
            self.loop.run(self.stop)
        finally:
            self.close()

    def close(self) -> None:
        if self.load is not None:
            self.load.stop()
        try:
            self.consumer.close()
        finally:
            self.producer.flush(10)
            self.redis.close()


def main() -> None:
    settings = TrainerSettings()
    configure("trainer", settings.observability.log_level, settings.observability.log_format)
    # Process-wide (torch's thread pool), so applied here and not in build(): tests and
    # benchmarks embed TrainerApp in a process whose threads they do not want bounded.
    limits = apply_process_limits(settings.control)
    _log.info("interference_control", enabled=settings.control.enabled, **limits)
    app = TrainerApp(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: app.stop.set())
    app.metrics_port = serve(app.metrics.registry, settings.observability.metrics_host, settings.observability.metrics_port)
    _log.info("metrics_serving", port=app.metrics_port)
    app.build().run()
