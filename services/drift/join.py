"""The prediction/feedback join in Redis: one atomic Lua script per batch of Kafka records.

Keys of one model share the prefix ``<key_prefix>drift:{<model>}:`` (the braces make them one
Redis Cluster hash slot). Each request id has one key, ``r:<request_id>``, whose first byte
says where the request stands:

- ``P<packed prediction>``: a prediction waiting for its feedback (TTL ``join_ttl``);
- ``F<label:partition:offset>``: feedback that arrived before its prediction ("parked",
  TTL ``join_ttl``), with its deadline in the sorted set ``fdl`` so the sweeper can count the
  ones never matched;
- ``J``: joined (TTL ``dedupe_ttl``): any later copy of the request is a duplicate.

``s:<source>`` records that the record ``<p|f>:<partition>:<offset>`` was handled: its first
byte is ``d`` (handled) or ``o`` (its samples were acknowledged by the broker), the rest the
joins it made (MessagePack: item index, the other side's value), TTL ``dedupe_ttl``. ``stats``
holds durable counters: ``joined``, ``parked``, ``stored``, ``expired``,
``duplicate_feedback``, ``duplicate_prediction``.

A record handled a second time (redelivered after a crash, or after a rebalance, before its
offset was committed) changes nothing: the script finds ``s:<source>`` and returns exactly the
joins that record made the first time, so the caller can publish the same samples again
(unless ``o`` says they already reached the broker) and feed its detectors if their saved
state predates that record. (Workers before this layout kept the joins in ``J`` values, as
``J<source>|<feedback>|<packed prediction>``; a redelivered record they handled is still
answered from those.)

Each record travels as four arguments: its source, its item count, the request ids (each
after two little-endian length bytes) and the values (predictions: two length bytes and
``P<packed prediction>``; feedback: one length byte and the label in decimal). In the usual
order (feedback after its prediction) each event costs Redis one ``SET``: a prediction is
stored with ``NX GET``, its feedback turns it into ``J`` with ``XX GET`` and gets the
prediction back.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.drift.ordered import OrderedScript

_log = logging.getLogger("modelci.drift.join")

JOIN_SCRIPT = r"""
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local dttl = tonumber(ARGV[4])
local ttl_s, dttl_s = ARGV[3], ARGV[4]  -- as strings: redis.call would convert numbers each time
local P = ARGV[5]
local i = 6
local nmarks = tonumber(ARGV[i]); i = i + 1
for _ = 1, nmarks do
  local mk = P .. 's:' .. ARGV[i]; i = i + 1
  if redis.call('EXISTS', mk) == 1 then redis.call('SETRANGE', mk, 0, 'o') end
end
local nrec = tonumber(ARGV[i]); i = i + 1
local out = {}
local joined, parked, dupf, dupp, stored = 0, 0, 0, 0, 0
local sub, find, byte, call = string.sub, string.find, string.byte, redis.call
local fdl = P .. 'fdl'
for _ = 1, nrec do
  local src = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local keys = ARGV[i + 2]
  local vals = ARGV[i + 3]
  i = i + 4
  local skey = P .. 's:' .. src
  local status = redis.call('GET', skey)
  local res = {}
  local nres = 0
  if status then
    -- Redelivered: return the joins this record made, nothing else changes.
    if #status > 1 then
      res = cmsgpack.unpack(sub(status, 2))
    else
      -- Handled by a worker of the earlier format: joined keys name their source.
      local lsrc = #src
      local kp = 1
      for k = 1, n do
        local kl = byte(keys, kp) + 256 * byte(keys, kp + 1)
        local v = redis.call('GET', P .. 'r:' .. sub(keys, kp + 2, kp + 1 + kl))
        kp = kp + 2 + kl
        if v and sub(v, 1, 1) == 'J' and sub(v, 2, lsrc + 1) == src and sub(v, lsrc + 2, lsrc + 2) == '|' then
          local b = find(v, '|', lsrc + 3, true)
          res[#res + 1] = k
          if mode == 'p' then res[#res + 1] = sub(v, lsrc + 3, b - 1) else res[#res + 1] = 'P' .. sub(v, b + 1) end
        end
      end
    end
    status = sub(status, 1, 1)
  else
    status = 'n'
    local kp, vp = 1, 1
    if mode == 'p' then
      for k = 1, n do
        local kl = byte(keys, kp) + 256 * byte(keys, kp + 1)
        local vl = byte(vals, vp) + 256 * byte(vals, vp + 1)
        local key = P .. 'r:' .. sub(keys, kp + 2, kp + 1 + kl)
        local val = sub(vals, vp + 2, vp + 1 + vl)
        kp = kp + 2 + kl
        vp = vp + 2 + vl
        -- First arrival of either side is one call: set only if absent, returning what was there.
        local v = call('SET', key, val, 'PX', ttl_s, 'NX', 'GET')
        if not v then
          stored = stored + 1
        elseif byte(v, 1) == 70 then  -- 'F'
          call('SET', key, 'J', 'PX', dttl_s)
          nres = nres + 1; res[nres] = k; nres = nres + 1; res[nres] = sub(v, 2)
          joined = joined + 1
        else
          dupp = dupp + 1
        end
      end
    else
      local where = sub(src, 2)  -- ':<partition>:<offset>' of this feedback record
      for k = 1, n do
        local kl = byte(keys, kp) + 256 * byte(keys, kp + 1)
        local rid = sub(keys, kp + 2, kp + 1 + kl)
        local ll = byte(vals, vp)
        local label = sub(vals, vp + 1, vp + ll)
        kp = kp + 2 + kl
        vp = vp + 1 + ll
        local key = P .. 'r:' .. rid
        -- The usual case (the prediction is waiting) is one call: mark joined if present.
        local v = call('SET', key, 'J', 'PX', dttl_s, 'XX', 'GET')
        if not v then
          call('SET', key, 'F' .. label .. where, 'PX', ttl_s)
          call('ZADD', fdl, now + ttl, rid)
          parked = parked + 1
        elseif byte(v, 1) == 80 then  -- 'P': returned as kept, the caller skips the tag
          nres = nres + 1; res[nres] = k; nres = nres + 1; res[nres] = v
          joined = joined + 1
        else
          dupf = dupf + 1
          -- Put back what a duplicate overwrote: parked feedback keeps its deadline.
          if sub(v, 1, 1) == 'F' then
            local deadline = tonumber(redis.call('ZSCORE', fdl, rid) or (now + ttl))
            redis.call('SET', key, v, 'PX', math.max(1, deadline - now))
          elseif #v > 1 then
            redis.call('SET', key, v, 'PX', dttl)
          end
        end
      end
    end
    redis.call('SET', skey, 'd' .. cmsgpack.pack(res), 'PX', dttl)
  end
  out[#out + 1] = status
  out[#out + 1] = res
end
local stats = P .. 'stats'
if joined > 0 then redis.call('HINCRBY', stats, 'joined', joined) end
if parked > 0 then redis.call('HINCRBY', stats, 'parked', parked) end
if dupf > 0 then redis.call('HINCRBY', stats, 'duplicate_feedback', dupf) end
if dupp > 0 then redis.call('HINCRBY', stats, 'duplicate_prediction', dupp) end
if stored > 0 then redis.call('HINCRBY', stats, 'stored', stored) end
return {out, joined, parked, dupf, dupp, stored}
"""

SWEEP_SCRIPT = r"""
local P = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local rids = redis.call('ZRANGEBYSCORE', P .. 'fdl', '-inf', now, 'LIMIT', 0, limit)
local expired = 0
for _, rid in ipairs(rids) do
  redis.call('ZREM', P .. 'fdl', rid)
  local key = P .. 'r:' .. rid
  local v = redis.call('GET', key)
  local tag = v and string.sub(v, 1, 1)
  -- Not joined by its deadline: expired (even if a prediction arrived after the TTL).
  if tag ~= 'J' then
    expired = expired + 1
    if tag == 'F' then redis.call('DEL', key) end
  end
end
if expired > 0 then redis.call('HINCRBY', P .. 'stats', 'expired', expired) end
return {expired, #rids}
"""

# version, prediction partition, prediction offset, predicted label, confidence; then the input
PRED_HEAD = struct.Struct("<qiqif")

MAX_VALUE = 65535
"""Longest value the join script's arguments carry (two length bytes): ``P``, `PRED_HEAD` and
the input must fit: at most 16,375 float features, or 21,833 token ids below 2**20."""


def pack_prediction(
    version: int, partition: int, offset: int, predicted: int, confidence: float, features: list[float] | bytes, int_features: Sequence[int] = ()
) -> bytes:
    """What a waiting prediction keeps in Redis: enough to build its labeled sample later.

    ``PRED_HEAD``, then the input as the sample carries it: the Avro ``features`` block and the
    ``int_features`` block (`services.drift.samples.inputs_from_lists`), ready to be copied into
    the sample as one blob. ``features`` may be that blob already encoded (bytes; then
    ``int_features`` is not used). Values packed before schema v2 lack the ``int_features``
    block; `unpack_prediction` adds it.
    """
    from services.drift.samples import inputs_from_lists

    inputs = features if isinstance(features, bytes) else inputs_from_lists(features, list(int_features))
    return PRED_HEAD.pack(version, partition, offset, predicted, confidence) + inputs


PRED_KEY_LEN = 20
"""Length of the packed prediction's prefix holding version, partition and offset."""


def unpack_prediction(blob: bytes) -> tuple[int, int, int, int, float, bytes]:
    """(version, partition, offset, predicted, confidence, input blob): the Avro ``features`` and
    ``int_features`` blocks, the second one added (empty) to a value packed before schema v2."""
    from services.drift.samples import with_int_features

    version, partition, offset, predicted, confidence = PRED_HEAD.unpack_from(blob)
    return version, partition, offset, predicted, confidence, with_int_features(blob[PRED_HEAD.size :])


def pack_feedback(label: int, partition: int, offset: int) -> bytes:
    return b"%d:%d:%d" % (label, partition, offset)


def unpack_feedback(value: bytes) -> tuple[int, int, int]:
    label, partition, offset = value.split(b":")
    return int(label), int(partition), int(offset)


def source_id(kind: str, partition: int, offset: int) -> str:
    """Names one input record: ``p`` (predictions) or ``f`` (feedback), partition, offset."""
    return f"{kind}:{partition}:{offset}"


def pack_ids(rids: list[str] | list[bytes]) -> bytes:
    """Request ids as the script reads them: two little-endian length bytes, then the id."""
    out = []
    for rid in rids:
        raw = rid.encode() if isinstance(rid, str) else rid
        if len(raw) > 65535:
            raise ValueError("request id longer than 65535 bytes")
        out.append(len(raw).to_bytes(2, "little") + raw)
    return b"".join(out)


def pack_prediction_values(values: list[bytes]) -> bytes:
    """Packed predictions (`pack_prediction`) as the script reads them."""
    return b"".join(len(v := b"P" + value).to_bytes(2, "little") + v for value in values)


def pack_labels(labels: list[int]) -> bytes:
    """Feedback labels as the script reads them: one length byte, the label in decimal."""
    out = []
    for label in labels:
        text = b"%d" % label
        out.append(bytes((len(text),)) + text)
    return b"".join(out)


class RecordJoins:
    """What the script said about one Kafka record."""

    __slots__ = ("status", "raw")

    def __init__(self, status: str, raw: list[Any]) -> None:
        self.status = status
        """``n``: first time; ``d``: handled before, samples not known to be published; ``o``:
        handled before and its samples are on the broker."""
        self.raw = raw
        """The script's answer: item number (from 1), the other side's value, per join."""

    @property
    def indices(self) -> list[int]:
        """Index of each joined item in the record (from 0)."""
        return [int(k) - 1 for k in self.raw[0::2]]

    @property
    def values(self) -> list[bytes]:
        """The other side's value per join, as Redis kept it: ``P<packed prediction>`` for a
        feedback record, ``label:partition:offset`` for a prediction record."""
        return self.raw[1::2]

    @property
    def joins(self) -> list[tuple[int, bytes]]:
        """(index of the item in the record, the packed prediction or feedback) per join."""
        return [(k, v[1:] if v[:1] == b"P" else v) for k, v in zip(self.indices, self.values)]

    @property
    def replay(self) -> bool:
        return self.status != "n"


@dataclass
class JoinResult:
    records: list[RecordJoins]
    joined: int = 0
    parked: int = 0
    duplicate_feedback: int = 0
    duplicate_prediction: int = 0
    stored: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class JoinStore:
    """Runs the join and sweep scripts for one Redis (async client with hiredis)."""

    def __init__(self, redis: Any, prefix: str, join_ttl_s: float, dedupe_ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.join_ttl_ms = int(join_ttl_s * 1000)
        self.dedupe_ttl_ms = int(dedupe_ttl_s * 1000)
        self._ordered = OrderedScript(redis, JOIN_SCRIPT)
        self._sweep = redis.register_script(SWEEP_SCRIPT)

    def model_prefix(self, model: str) -> str:
        return f"{self.prefix}{{{model}}}:"

    def send(
        self,
        mode: str,
        model: str,
        records: list[tuple[str, int, bytes, bytes]],
        now_ms: int,
        published: list[str] = (),  # type: ignore[assignment]
    ) -> "asyncio.Future[JoinResult]":
        """Sends the join of ``records`` now, after every call sent before; the future resolves
        with its result. ``records``: ``(source_id, items, ids, values)`` each, ``ids`` from
        `pack_ids` and ``values`` from `pack_prediction_values` (mode ``p``) or `pack_labels`
        (mode ``f``). ``published`` lists sources whose samples the broker has acknowledged.
        A lost connection is retried until Redis answers (`ordered.OrderedScript`)."""
        args: list[Any] = [mode, now_ms, self.join_ttl_ms, self.dedupe_ttl_ms, self.model_prefix(model), len(published)]
        args.extend(published)
        args.append(len(records))
        for record in records:
            args.extend(record)
        loop = asyncio.get_running_loop()
        result: asyncio.Future[JoinResult] = loop.create_future()

        def parse(reply: asyncio.Future[Any]) -> None:
            if result.done():
                return
            if reply.exception() is not None:
                result.set_exception(reply.exception())  # type: ignore[arg-type]
                return
            out, joined, parked, dupf, dupp, stored = reply.result()
            records_out = [RecordJoins(out[k].decode(), out[k + 1]) for k in range(0, len(out), 2)]
            result.set_result(JoinResult(records_out, joined, parked, dupf, dupp, stored))

        self._ordered.call(args).add_done_callback(parse)
        return result

    async def run(self, *args: Any, **kwargs: Any) -> JoinResult:
        """`send`, awaited (same arguments)."""
        return await self.send(*args, **kwargs)

    async def close(self) -> None:
        await self._ordered.close()

    async def sweep(self, model: str, now_ms: int, limit: int = 10000) -> int:
        """Counts (once) and forgets parked feedback whose deadline passed; returns how many."""
        expired, _seen = await self._sweep(args=[self.model_prefix(model), now_ms, limit])
        return int(expired)

    async def stats(self, model: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.model_prefix(model) + "stats")
        return {k.decode(): int(v) for k, v in raw.items()}
