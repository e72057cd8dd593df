"""Live updates for browsers: Redis pub/sub in, server-sent events out.

The event reader publishes one small message per drift, update, candidate, deployment (and a
throttled one per accuracy change) on a Redis channel; every console replica's SSE endpoint
subscribes to it, so a browser sees events whichever replica it is connected to and whichever
replica's reader consumed them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

HEARTBEAT_S = 15.0


def channel(prefix: str) -> str:
    return f"{prefix}console:live"


class LivePublisher:
    """Publishes live messages; accuracy pushes are throttled per model."""

    def __init__(self, client, prefix: str, min_interval_s: float = 1.0) -> None:
        self.r = client
        self.channel = channel(prefix)
        self.min_interval_s = min_interval_s
        self._last: dict[str, float] = {}

    def publish(self, kind: str, model: str, data: dict[str, Any] | None = None) -> bool:
        if kind == "accuracy":
            now = time.monotonic()
            if now - self._last.get(model, -1e9) < self.min_interval_s:
                return False
            self._last[model] = now
        self.r.publish(self.channel, json.dumps({"kind": kind, "model": model, "data": data or {}}))
        return True


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def stream(async_client, prefix: str, is_disconnected, model: str | None = None) -> AsyncIterator[str]:
    """Yields SSE frames for every live message (of one model, when given) until the client leaves."""
    pubsub = async_client.pubsub()
    await pubsub.subscribe(channel(prefix))
    try:
        yield sse("hello", {"at_ms": int(time.time() * 1000)})
        last_beat = time.monotonic()
        while not await is_disconnected():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                payload = json.loads(message["data"])
                if model is None or payload.get("model") == model:
                    yield sse(payload["kind"], payload)
            elif time.monotonic() - last_beat > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                last_beat = time.monotonic()
            await asyncio.sleep(0)
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
