"""Update requests: cooldown, one in flight per model, sample ranges; all state in Redis.

Keys, next to the join's (``<prefix>{model}:``):

- ``inflight``: the event id of the model's update request that has no candidate yet
  (``SET`` only if absent; expires after ``inflight_timeout_s``). Any worker sees it.
- ``last_request``: when the last request was made (milliseconds), for the cooldown.
- ``ranges``: per ``cl.samples`` partition, the first offset not yet covered by a request.
- ``state`` and ``outbox``: the model's snapshot and the events saved but not yet acknowledged.

The decision, the new range starts, the snapshot (with the pending drift cleared) and the
request itself (in the outbox) are written by one script, so a crash leaves either no trace of
the request or everything needed to publish it after restart.
"""

from __future__ import annotations

from typing import Any

REQUEST_SCRIPT = r"""
local P = ARGV[1]
local rid = ARGV[2]
local now = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local state = ARGV[6]
local field = ARGV[7]
local value = ARGV[8]
local nranges = tonumber(ARGV[9])
local result
local cur = redis.call('GET', P .. 'inflight')
if cur and cur ~= rid then
  result = 'in_flight'
elseif cur == rid then
  result = 'requested'
else
  local last = tonumber(redis.call('GET', P .. 'last_request') or '-1')
  if last >= 0 and now - last < cooldown then
    result = 'cooldown'
  else
    redis.call('SET', P .. 'inflight', rid, 'PX', ttl)
    redis.call('SET', P .. 'last_request', now)
    local i = 10
    for _ = 1, nranges do
      redis.call('HSET', P .. 'ranges', ARGV[i], ARGV[i + 1])
      i = i + 2
    end
    redis.call('HSET', P .. 'outbox', field, value)
    result = 'requested'
  end
end
redis.call('SET', P .. 'state', state)
return result
"""

CLEAR_SCRIPT = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class UpdatePolicy:
    """Redis side of update decisions for every model."""

    def __init__(self, redis: Any, cooldown_s: float, inflight_timeout_s: float) -> None:
        self.redis = redis
        self.cooldown_ms = int(cooldown_s * 1000)
        self.inflight_ttl_ms = int(inflight_timeout_s * 1000)
        self._request = redis.register_script(REQUEST_SCRIPT)
        self._clear = redis.register_script(CLEAR_SCRIPT)

    async def range_starts(self, prefix: str) -> dict[int, int]:
        raw = await self.redis.hgetall(prefix + "ranges")
        return {int(k): int(v) for k, v in raw.items()}

    async def note_first_sample(self, prefix: str, partition: int, offset: int) -> None:
        """Where the samples of a model start, the first time any are acknowledged."""
        await self.redis.hsetnx(prefix + "ranges", str(partition), offset)

    async def request(
        self,
        prefix: str,
        request_id: str,
        now_ms: int,
        state_json: str,
        outbox_field: str,
        outbox_value: bytes,
        new_starts: dict[int, int],
    ) -> str:
        """``requested``, ``in_flight`` or ``cooldown``; the snapshot is saved in every case."""
        args: list[Any] = [
            prefix,
            request_id,
            now_ms,
            self.cooldown_ms,
            self.inflight_ttl_ms,
            state_json,
            outbox_field,
            outbox_value,
            len(new_starts),
        ]
        for partition, start in new_starts.items():
            args.extend([str(partition), start])
        result = await self._request(args=args)
        return result.decode() if isinstance(result, bytes) else str(result)

    async def clear_inflight(self, prefix: str, update_id: str) -> bool:
        """Clears the in-flight marker if it is this update's (a candidate arrived for it)."""
        return bool(await self._clear(keys=[prefix + "inflight"], args=[update_id]))

    async def inflight(self, prefix: str) -> str | None:
        value = await self.redis.get(prefix + "inflight")
        return value.decode() if value is not None else None
