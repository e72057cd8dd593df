"""Update requests: cooldown, one in flight per model, sample ranges; all state in Redis.

Keys, next to the join's (``<prefix>{model}:``):

- ``inflight``: the event id of the model's update request that has no candidate yet
  (``SET`` only if absent; expires after ``inflight_timeout_s``). Any worker sees it.
- ``last_request``: when the last request was made (milliseconds), for the cooldown.
- ``failures`` and ``backoff_until``: consecutive updates that ended in a failed candidate, and
  until when (milliseconds) no request is made because of them. A failure has a model-level
  cause (the trainer retries transient ones itself), so repeating it every cooldown would only
  fail again: the wait doubles with each failure, up to a cap, and a succeeded candidate ends it.
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
local backoff_until = tonumber(redis.call('GET', P .. 'backoff_until') or '-1')
if cur and cur ~= rid then
  result = 'in_flight'
elseif cur == rid then
  result = 'requested'
elseif now < backoff_until then
  result = 'backoff'
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
local P = ARGV[1]
if redis.call('GET', P .. 'inflight') ~= ARGV[2] then
  return {0, 0, 0}
end
redis.call('DEL', P .. 'inflight')
if ARGV[3] == 'succeeded' then
  redis.call('DEL', P .. 'failures', P .. 'backoff_until')
  return {1, 0, 0}
end
local n = redis.call('INCR', P .. 'failures')
local wait = math.floor(math.min(tonumber(ARGV[5]) * 2 ^ (n - 1), tonumber(ARGV[6])))
redis.call('SET', P .. 'backoff_until', tonumber(ARGV[4]) + wait)
return {1, n, wait}
"""
"""Clears the in-flight marker when the candidate answers it, and only then counts the outcome
(a redelivered candidate finds no marker, so nothing is counted twice)."""


class UpdatePolicy:
    """Redis side of update decisions for every model."""

    def __init__(self, redis: Any, cooldown_s: float, inflight_timeout_s: float, failure_backoff_s: float = 600.0,
                 max_failure_backoff_s: float = 24 * 3600.0) -> None:
        self.redis = redis
        self.cooldown_ms = int(cooldown_s * 1000)
        self.inflight_ttl_ms = int(inflight_timeout_s * 1000)
        self.failure_backoff_ms = int(failure_backoff_s * 1000)
        self.max_failure_backoff_ms = int(max_failure_backoff_s * 1000)
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
        """``requested``, ``in_flight``, ``backoff`` or ``cooldown``; the snapshot is saved in every case."""
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

    async def answered(self, prefix: str, update_id: str, outcome: str, now_ms: int) -> tuple[bool, int, int]:
        """A candidate arrived for ``update_id``: (whether it answered the request in flight,
        consecutive failures now, milliseconds of back-off they impose)."""
        cleared, failures, wait = await self._clear(
            args=[prefix, update_id, outcome, now_ms, self.failure_backoff_ms, self.max_failure_backoff_ms]
        )
        return bool(cleared), int(failures), int(wait)

    async def inflight(self, prefix: str) -> str | None:
        value = await self.redis.get(prefix + "inflight")
        return value.decode() if value is not None else None
