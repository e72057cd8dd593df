"""Where each model version's labeled samples lie in ``cl.samples``.

A manual "update now" must tell the trainer which samples to learn from, exactly as the drift
service does for automatic updates. The console already reads every labeled-sample batch (for
live accuracy), so it records, per model version and partition, the first and last offset it
saw; "the samples since the base version" are then the ranges of the serving version.
"""

from __future__ import annotations

from services.common.events import LabeledSampleBatch, OffsetRange

# min and max per partition in one round trip, whatever order replays arrive in.
_WIDEN = """
for i = 1, #ARGV, 2 do
  local lo, hi = 'lo:' .. ARGV[i], 'hi:' .. ARGV[i]
  local offset = tonumber(ARGV[i + 1])
  local cur = redis.call('HGET', KEYS[1], lo)
  if not cur or tonumber(cur) > offset then redis.call('HSET', KEYS[1], lo, offset) end
  cur = redis.call('HGET', KEYS[1], hi)
  if not cur or tonumber(cur) < offset then redis.call('HSET', KEYS[1], hi, offset) end
end
return 1
"""


class SampleOffsets:
    def __init__(self, client, prefix: str) -> None:
        self.r = client
        self.prefix = f"{prefix}console:sample_offsets:"
        self._widen = client.register_script(_WIDEN)

    def _key(self, model: str, version: int) -> str:
        return f"{self.prefix}{model}:{version}"

    def add(self, batch: LabeledSampleBatch, partition: int, offset: int) -> None:
        for version in {s.model_version for s in batch.items}:
            self._widen(keys=[self._key(batch.model, version)], args=[partition, offset])

    def ranges(self, model: str, version: int) -> list[OffsetRange]:
        """Half-open offset ranges, per partition, holding the version's labeled samples."""
        raw = {k.decode(): int(v) for k, v in self.r.hgetall(self._key(model, version)).items()}
        partitions = sorted(int(k[3:]) for k in raw if k.startswith("lo:"))
        return [OffsetRange(p, raw[f"lo:{p}"], raw[f"hi:{p}"] + 1) for p in partitions if f"hi:{p}" in raw]
