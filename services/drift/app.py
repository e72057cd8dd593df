"""The Faust application: thin agents around `DriftService`, plus timers and rebalance hooks.

Input records are Avro batches (one Kafka record = many events), consumed as raw bytes and
decoded by the service with the project's serde, so a bad record becomes a dead letter instead
of an exception inside Faust. Each agent takes up to ``take_max`` records at a time without
acknowledging them (``noack_take``) and acknowledges them only when the service says their
effects are durable; Faust then commits their offsets (``at_least_once``).

Faust's own tables are not used: the join, the detector state and the counters live in Redis,
where every worker sees them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import TP

from services.common.settings import KafkaSettings
from services.common.topics import CANDIDATES, FEEDBACK, PREDICTIONS
from services.drift import transport
from services.drift.alignment import Alignment
from services.drift.metrics import DriftMetrics
from services.drift.service import DriftService, InRecord
from services.drift.settings import DriftSettings

_log = logging.getLogger("modelci.drift.app")


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's broker credentials from the shared Kafka settings (None for PLAINTEXT)."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        ssl_context = create_ssl_context(cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile)
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            ssl_context=ssl_context,
            mechanism=kafka.sasl_mechanism or "PLAIN",
        )
    return ssl_context


class Runtime:
    """What the agents share: the service (started once, lazily) and the acknowledgement tasks."""

    def __init__(self, app: faust.App, service: DriftService, predictions_topic: str, align_max_wait_s: float) -> None:
        self.app = app
        self.service = service
        self._started: asyncio.Future[None] | None = None
        self.processed: dict[TP, int] = {}
        self.predictions_topic = predictions_topic
        self.alignment = Alignment(align_max_wait_s)
        self.begun: dict[int, int] = {}
        """Predictions partition -> offset of the last record handed to the service."""

    def predictions_begun(self, records: list[InRecord]) -> None:
        for rec in records:
            if rec.offset > self.begun.get(rec.partition, -1):
                self.begun[rec.partition] = rec.offset
        self.alignment.predictions_begun(records)

    def predictions_caught_up(self, partition: int) -> bool:
        """True when every predictions record of ``partition`` the broker has was handed over,
        or when this worker does not read that partition (nothing to wait for)."""
        tp = TP(self.predictions_topic, partition)
        try:
            consumer = self.app.consumer
            if tp not in consumer.assignment():
                return True
            highwater = consumer.highwater(tp)
        except Exception:  # consumer not started or rebalancing
            return False
        return highwater is not None and self.begun.get(partition, -1) + 1 >= highwater

    async def ready(self) -> DriftService:
        if self._started is None:
            self._started = asyncio.ensure_future(self.service.start())
        await asyncio.shield(self._started)
        return self.service

    def records(self, events: list[Any]) -> list[InRecord]:
        out = []
        for event in events:
            msg = event.message
            out.append(InRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value, msg.timestamp))
        return out

    def ack_when(self, stream: Any, events: list[Any], durable: Awaitable[None]) -> None:
        asyncio.ensure_future(self._ack(stream, events, durable))

    def complete(self, stream: Any, events: list[Any], step: Any, step_seconds: Any, started: float) -> None:
        async def run() -> None:
            try:
                durable = await self.service.complete(step)
            except Exception as exc:
                _log.exception("a step failed; stopping")
                await self.app.crash(exc)
                return
            step_seconds.observe(asyncio.get_running_loop().time() - started)
            await self._ack(stream, events, durable)

        asyncio.ensure_future(run())

    async def _ack(self, stream: Any, events: list[Any], durable: Awaitable[None]) -> None:
        try:
            await durable
        except Exception as exc:
            # Not durable (the broker refused the output): never acknowledge, stop the worker;
            # after a restart the records are redelivered and handled again.
            _log.exception("effects of %d records are not durable; stopping", len(events))
            await self.app.crash(exc)
            return
        for event in events:
            msg = event.message
            self.processed[msg.tp] = msg.offset
            await stream.ack(event)


def create_app(settings: DriftSettings, metrics: DriftMetrics | None = None, service: DriftService | None = None) -> faust.App:
    kafka = settings.kafka
    service = service or DriftService(settings, metrics)
    metrics = service.metrics
    web = settings.web_port is not None
    scheme = transport.register(settings.fetch_max_wait_ms)
    app = faust.App(
        settings.group_id(),
        broker=[f"{scheme}://{host}" for host in kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(kafka),
        broker_session_timeout=kafka.session_timeout_ms / 1000.0,
        broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000.0,
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        # No tables here, but a standby count > 0 makes Faust use its own partition assignor,
        # which gives the same partition numbers of co-subscribed topics with equal partition
        # counts to the same worker: a model's predictions and feedback meet in one process.
        # (Without it Faust falls back to aiokafka's round robin.)
        table_standby_replicas=1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        store="memory://",
        web_enabled=web,
        web_port=settings.web_port or 6066,
        web_host=settings.observability.metrics_host,
        datadir=settings.datadir or None,
        autodiscover=False,
    )
    runtime = Runtime(app, service, kafka.topic(PREDICTIONS), settings.align_max_wait_s)
    app.drift_runtime = runtime  # type: ignore[attr-defined]

    def raw_topic(logical: str) -> faust.TopicT:
        return app.topic(
            kafka.topic(logical),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    def agent(logical: str, handle: Callable[[list[InRecord]], Awaitable[asyncio.Future[None]]] | None = None) -> None:
        async def consume(stream: Any) -> None:
            await runtime.ready()
            step_seconds = metrics.step_seconds.labels(logical)
            loop = asyncio.get_running_loop()
            async for events in stream.noack_take(settings.take_max, within=settings.take_within_s):
                records = runtime.records(events)
                if handle is not None:
                    runtime.ack_when(stream, events, await handle(records))
                    continue
                # Pipelined: the join script of this step runs in Redis while the agent takes
                # and decodes the next step; the rest of the step completes in the background,
                # in order, and its records are acknowledged when its effects are durable.
                if logical == FEEDBACK:
                    held = await runtime.alignment.wait(records, runtime.predictions_caught_up)
                    if held:
                        metrics.feedback_held.inc(held)
                started = loop.time()
                step = await service.begin(logical, records)
                if logical == PREDICTIONS:
                    runtime.predictions_begun(records)
                runtime.complete(stream, events, step, step_seconds, started)

        consume.__name__ = consume.__qualname__ = f"drift_{logical.replace('.', '_')}"
        app.agent(raw_topic(logical), name=consume.__name__)(consume)

    agent(PREDICTIONS)
    agent(FEEDBACK)
    agent(CANDIDATES, service.handle_candidates)

    @app.timer(settings.snapshot_interval_s)
    async def snapshot() -> None:
        if runtime._started is not None and runtime._started.done():
            await service.tick()
            await _lag(app, runtime, service)

    @app.timer(settings.sweep_interval_s)
    async def sweep() -> None:
        if runtime._started is not None and runtime._started.done():
            await service.sweep()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        if runtime._started is not None and runtime._started.done():
            await service.release({(tp.topic, tp.partition) for tp in revoked})
        for tp in revoked:
            runtime.processed.pop(tp, None)
            if tp.topic == runtime.predictions_topic:
                runtime.begun.pop(tp.partition, None)
            try:
                metrics.lag.remove(service.logical(tp.topic), str(tp.partition))
            except KeyError:
                pass

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        metrics.assigned.set(len(assigned))

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        if runtime._started is not None and runtime._started.done():
            await service.stop()

    return app


async def _lag(app: faust.App, runtime: Runtime, service: DriftService) -> None:
    """Consumer lag per assigned partition: end of the partition minus what was handled."""
    try:
        consumer = app.consumer
        assignment = consumer.assignment()
    except Exception:  # consumer not started or rebalancing
        return
    for tp in assignment:
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        if highwater is None:
            continue
        done = runtime.processed.get(tp, -1) + 1
        service.metrics.lag.labels(service.logical(tp.topic), str(tp.partition)).set(max(0, highwater - done))
