"""Live accuracy per model and version, from the labeled samples the drift service publishes.

Each version keeps its last ``window`` outcomes (1 = predicted the label) as a string in Redis;
the rolling accuracy is the share of ones. Every batch also appends one point per version to
the model's time series, which the chart draws. One Lua script per batch does all of it
together with the batch's "seen" mark, so a replayed batch is never counted twice and a reader
never sees half a batch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from services.common.events import LabeledSampleBatch

_SCRIPT = """
-- KEYS[1] seen mark, KEYS[2] series list, KEYS[3] latest hash, KEYS[4..] outcome strings per version
-- ARGV[1] seen ttl, ARGV[2] window, ARGV[3] series length, ARGV[4] time ms, ARGV[5] json [[version, outcomes], ...]
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return nil end
local window = tonumber(ARGV[2])
local groups = cjson.decode(ARGV[5])
local out = {}
for i, group in ipairs(groups) do
  local key = KEYS[3 + i]
  local s = (redis.call('GET', key) or '') .. group[2]
  if #s > window then s = string.sub(s, -window) end
  redis.call('SET', key, s)
  local _, ones = string.gsub(s, '1', '')
  local total = tonumber(redis.call('HGET', KEYS[3], 'total:' .. group[1]) or '0') + #group[2]
  local point = cjson.encode({t = tonumber(ARGV[4]), version = group[1], accuracy = ones / #s, samples = #s, total = total})
  redis.call('HSET', KEYS[3], tostring(group[1]), point, 'total:' .. group[1], total)
  redis.call('RPUSH', KEYS[2], point)
  table.insert(out, point)
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
return out
"""


class AccuracyTracker:
    def __init__(self, client, prefix: str, window: int = 500, series_length: int = 720, seen_ttl_s: int = 7 * 24 * 3600) -> None:
        self.r = client
        self.p = f"{prefix}console:"
        self.window = window
        self.series_length = series_length
        self.seen_ttl_s = seen_ttl_s
        self._script = client.register_script(_SCRIPT)

    def add(self, batch: LabeledSampleBatch) -> list[dict[str, Any]] | None:
        """Counts a batch; returns the new points (one per version), or None for a replay."""
        outcomes: dict[int, list[str]] = defaultdict(list)
        for item in batch.items:
            outcomes[int(item.model_version)].append("1" if item.predicted == item.label else "0")
        if not outcomes:
            return []
        groups = sorted(outcomes.items())
        keys = [f"{self.p}seen:{batch.event_id}", f"{self.p}series:{batch.model}", f"{self.p}accuracy:{batch.model}"]
        keys += [f"{self.p}outcomes:{batch.model}:{v}" for v, _ in groups]
        args = [self.seen_ttl_s, self.window, self.series_length, batch.joined_at_ms,
                json.dumps([[v, "".join(o)] for v, o in groups])]
        result = self._script(keys=keys, args=args)
        if result is None:
            return None
        return [json.loads(p) for p in result]

    def latest(self, model: str) -> dict[int, dict[str, Any]]:
        """The rolling accuracy of each version of ``model`` seen in samples."""
        raw = self.r.hgetall(f"{self.p}accuracy:{model}")
        return {int(k): json.loads(v) for k, v in raw.items() if not k.startswith(b"total:")}

    def series(self, model: str, limit: int | None = None) -> list[dict[str, Any]]:
        start = -limit if limit else 0
        return [json.loads(p) for p in self.r.lrange(f"{self.p}series:{model}", start, -1)]
