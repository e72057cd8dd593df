"""The async Redis client of the drift service, with hiredis packing commands.

redis-py's asyncio connection builds each command in Python, re-joining the buffer once per
argument; the join script sends two arguments per event (thousands per call), and packing them
took more CPU than the rest of the service (measured: ~7 µs per argument under profiling).
hiredis (installed, already parsing the replies) packs a whole command in C. The connection
class of the pool is swapped for a subclass that does that; everything else is redis-py's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import hiredis

from services.common.settings import RedisSettings


@lru_cache(maxsize=None)
def _hiredis_packing(base: type) -> type:
    class HiredisPacking(base):  # type: ignore[misc, valid-type]
        def pack_command(self, *args: Any) -> list[bytes]:
            first = args[0]
            # redis-py passes some commands with their subcommand in one word ("SCRIPT LOAD").
            if isinstance(first, str) and " " in first:
                args = (*first.split(), *args[1:])
            elif isinstance(first, bytes) and b" " in first:
                args = (*first.split(), *args[1:])
            return [hiredis.pack_command(args)]

    HiredisPacking.__name__ = f"HiredisPacking{base.__name__}"
    return HiredisPacking


def async_client(settings: RedisSettings) -> Any:
    client = settings.async_client()
    pool = client.connection_pool
    pool.connection_class = _hiredis_packing(pool.connection_class)
    return client
