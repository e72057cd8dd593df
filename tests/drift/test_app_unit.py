"""The Faust wiring alone, in Faust's test context: raw records reach the service, in order,
with their coordinates, and are acknowledged only when the service says they are durable."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.settings import KafkaSettings
from services.drift.app import create_app
from services.drift.metrics import DriftMetrics
from services.drift.service import InRecord
from services.drift.settings import DriftSettings


class FakeService:
    """Stands in for `DriftService`: records what it is handed; durability is controlled here."""

    def __init__(self) -> None:
        self.metrics = DriftMetrics()
        self.seen: list[InRecord] = []
        self.durable: asyncio.Future[None] | None = None
        self.started = False

    async def start(self) -> None:
        self.started = True

    def logical(self, topic: str) -> str:
        return topic.split(".", 1)[1] if topic.startswith("u.") else topic

    async def _handle(self, records: list[InRecord]) -> asyncio.Future[None]:
        self.seen.extend(records)
        self.durable = asyncio.get_running_loop().create_future()
        return self.durable

    handle_predictions = handle_feedback = handle_candidates = _handle

    async def begin(self, topic: str, records: list[InRecord]) -> asyncio.Future[None]:
        return await self._handle(records)

    async def complete(self, step: asyncio.Future[None]) -> asyncio.Future[None]:
        return step

    async def tick(self) -> None: ...

    async def sweep(self) -> None: ...

    async def release(self, revoked: Any) -> None: ...

    async def stop(self) -> None: ...


def test_agent_hands_raw_records_over_and_acks_when_durable() -> None:
    settings = DriftSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="u."), take_within_s=0.01)
    service = FakeService()
    app = create_app(settings, service=service)  # type: ignore[arg-type]
    app.finalize()
    agent = app.agents["drift_inference_predictions"]

    async def scenario() -> None:
        async with agent.test_context() as ctx:
            await ctx.put(b"first", key=b"m")
            await ctx.put(b"second", key=b"m")
            for _ in range(200):
                if len(service.seen) == 2:
                    break
                await asyncio.sleep(0.01)
            assert service.started
            assert [(r.value, r.key) for r in service.seen] == [(b"first", b"m"), (b"second", b"m")]
            assert service.seen[0].offset < service.seen[1].offset
            runtime = app.drift_runtime
            await asyncio.sleep(0.05)
            assert runtime.processed == {}  # not acknowledged while the effects are not durable
            service.durable.set_result(None)
            for _ in range(200):
                if runtime.processed:
                    break
                await asyncio.sleep(0.01)
            assert list(runtime.processed.values()) == [service.seen[1].offset]

    asyncio.run(scenario())
