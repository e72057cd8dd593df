"""Composition root of the deployer: settings, clients, metrics, the consumer loop, shutdown.

One consumer reads ``cl.candidates``, ``cl.commands`` and ``cl.samples`` (all keyed by model,
so one model's events stay ordered) and hands each decoded event to the core. Offsets are
committed only after the decision's deployment events are acknowledged by the broker. A
record that cannot be decoded, or names an unknown model, goes to ``<topic>.dlq``; a Triton
outage is retried with backoff from the same offset, never decided on.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import structlog
from confluent_kafka import TopicPartition
from redis.exceptions import RedisError

from services.common import kafka, logs, topics
from services.common.artifacts import FileArtifactStore
from services.common.errors import ModelCIError, SerdeError, TransientError
from services.common.events import Candidate, Command, DeploymentEvent, LabeledSampleBatch
from services.common.metrics import serve
from services.common.registry import ModelRegistry
from services.common.serde import decode_event, encode_event
from services.deployer.core import Deployer
from services.deployer.metrics import DeployerMetrics
from services.deployer.reconcile import reconcile
from services.deployer.samples import SampleStore
from services.deployer.settings import DeployerSettings
from services.deployer.triton_ops import TritonOps

_log = structlog.get_logger("deployer")


def build_deployer(settings: DeployerSettings, emit, metrics: DeployerMetrics | None = None) -> Deployer:
    client = settings.redis.client()
    prefix = settings.redis.key_prefix
    triton = TritonOps(settings.triton.http_url, settings.triton_retries, settings.triton_backoff_s, settings.load_timeout_s,
                       grpc_url=settings.triton.grpc_url)
    return Deployer(
        registry=ModelRegistry(client, prefix),
        store=FileArtifactStore(settings.artifact_root),
        samples=SampleStore(client, prefix, settings.recent_capacity, settings.replay_capacity),
        triton=triton,
        repository=Path(settings.triton.model_repository),
        metrics=metrics or DeployerMetrics(),
        emit=emit,
        processed_ttl_s=settings.processed_ttl_s,
    )


class DeployerApp:
    def __init__(self, settings: DeployerSettings, metrics: DeployerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or DeployerMetrics()
        k = settings.kafka
        self.producer = kafka.producer(k)
        self.dead = kafka.DeadLetters(self.producer, k, "deployer")
        self.deployer = build_deployer(settings, self._emit, self.metrics)
        self.stop_event = threading.Event()
        self.consuming = threading.Event()
        """Set once start-up (topics, reconciliation, the first gauge export) is done and records are read."""
        self.topics = {k.topic(topics.CANDIDATES): "candidate", k.topic(topics.COMMANDS): "command", k.topic(topics.SAMPLES): "samples"}
        self._exported_at = float("-inf")

    def _emit(self, event: DeploymentEvent) -> None:
        self.producer.produce(self.settings.kafka.topic(topics.DEPLOYMENTS), key=event.model.encode(), value=encode_event(event))

    def ensure_topics(self) -> None:
        names = [topics.CANDIDATES, topics.COMMANDS, topics.SAMPLES, topics.DEPLOYMENTS]
        kafka.ensure_topics(self.settings.kafka, {n: 1 for n in names} | {topics.dlq(n): 1 for n in names[:3]})

    def startup_reconcile(self) -> list[str]:
        delay = self.settings.triton_backoff_s
        while not self.stop_event.is_set():
            try:
                return reconcile(self.deployer)
            except TransientError as exc:
                _log.warning("reconcile waits for Triton", error=str(exc))
                self.stop_event.wait(delay)
                delay = min(delay * 2, 8.0)
        return []

    def export_serving_versions(self, force: bool = False) -> None:
        """The serving-version gauge of every registered model, at most every ``registry_refresh_s``.

        Between records, on the consumer's thread, so it never interleaves with a switch; a Redis
        hiccup only delays the gauge (the next refresh sets it)."""
        now = time.monotonic()
        if not force and now - self._exported_at < self.settings.registry_refresh_s:
            return
        self._exported_at = now
        try:
            self.deployer.export_serving_versions()
        except RedisError as exc:
            _log.warning("serving-version gauge not refreshed", error=str(exc))

    def handle(self, msg) -> None:
        kind = self.topics[msg.topic()]
        where = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
        if kind == "candidate":
            self.deployer.handle_candidate(decode_event(Candidate, msg.value(), **where))
        elif kind == "command":
            self.deployer.handle_command(decode_event(Command, msg.value(), **where))
        else:
            batch = decode_event(LabeledSampleBatch, msg.value(), **where)
            self.deployer.handle_samples(batch, msg.partition(), msg.offset())

    def run(self) -> None:
        """Consumes until ``stop_event`` is set; safe to run in a thread (tests) or as main."""
        self.ensure_topics()
        self.startup_reconcile()
        self.export_serving_versions(force=True)
        cons = kafka.consumer(self.settings.kafka, self.settings.group_id)
        cons.subscribe(list(self.topics))
        self.consuming.set()
        backoff = self.settings.triton_backoff_s
        try:
            while not self.stop_event.is_set():
                self.export_serving_versions()
                msg = cons.poll(self.settings.poll_timeout_s)
                if msg is None:
                    continue
                if msg.error():
                    _log.warning("consumer error", error=str(msg.error()))
                    continue
                try:
                    self.handle(msg)
                    backoff = self.settings.triton_backoff_s
                except TransientError as exc:
                    _log.warning("transient failure, will retry the record", error=str(exc), offset=msg.offset())
                    cons.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, 8.0)
                    continue
                except ModelCIError as exc:
                    self._dead_letter(msg, exc)
                except Exception as exc:  # a bug must not wedge the partition: park the record with why
                    _log.exception("unexpected failure handling a record")
                    err = ModelCIError(f"{type(exc).__name__}: {exc}")
                    err.reason = "processing_error"
                    self._dead_letter(msg, err)
                kafka.flush(self.producer)
                kafka.commit(cons, [msg])
        finally:
            cons.close()
            self.producer.flush(10)

    def _dead_letter(self, msg, exc: ModelCIError) -> None:
        if isinstance(exc, SerdeError):
            exc = exc.located(msg.topic(), msg.partition(), msg.offset())
        self.dead.send(msg, exc)
        self.metrics.dead_letters.labels(msg.topic()).inc()
        _log.warning("dead-lettered", reason=exc.reason, topic=msg.topic(), offset=msg.offset())


def main() -> None:
    settings = DeployerSettings()
    logs.configure("deployer", settings.observability.log_level, settings.observability.log_format)
    app = DeployerApp(settings)
    port = serve(app.metrics.registry, settings.observability.metrics_host, settings.observability.metrics_port)
    _log.info("deployer starting", metrics_port=port, triton=settings.triton.http_url)

    def stop(signum, _frame) -> None:
        _log.info("stopping", signal=signum)
        app.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.run()
    _log.info("deployer stopped")
