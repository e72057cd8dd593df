"""The deployer's memory of labeled samples, in Redis, bounded per model.

Validation needs samples by position in ``cl.samples``: "after the candidate's training ranges"
(fresh data it has not seen) and "before the base version's ranges" (older concepts, to measure
forgetting). Each sample is kept in a sorted set per model and partition, scored by the offset
of the ``cl.samples`` record that carried it; when the recent window overflows, evicted samples
go through reservoir sampling into a bounded replay set, so old concepts stay represented with
constant memory. Live correctness per served version feeds the post-deploy watch.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np

from services.common.events import LabeledSample, LabeledSampleBatch
from services.common.tensors import InputSpec, content_buckets


@dataclass
class SampleSet:
    features: np.ndarray
    """Flat inputs ``[n, size]``: float32, or int64 for an integer model (`inputs` shapes them)."""
    labels: np.ndarray
    predicted: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, spec: InputSpec) -> np.ndarray:
        """The ``[n, *shape]`` batch in the model's datatype, as the model and Triton take it."""
        return np.ascontiguousarray(self.features, dtype=spec.numpy_dtype).reshape(len(self), *spec.shape)


def _to_set(items: list[dict], source: str) -> SampleSet:
    if not items:
        return SampleSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), source)
    integer = any("x" in i for i in items)
    key = "x" if integer else "f"
    items = [i for i in items if key in i]  # an integer model's sample without ids cannot be scored
    return SampleSet(
        np.asarray([i["x"] for i in items], dtype=np.int64) if integer else np.asarray([i["f"] for i in items], dtype=np.float32),
        np.asarray([i["l"] for i in items], dtype=np.int64),
        np.asarray([i["y"] for i in items], dtype=np.int64),
        source,
    )


def _latest(items: list[dict], n: int | None) -> list[dict]:
    """The ``n`` newest samples by position (all when ``n`` is None), oldest first."""
    items = sorted(items, key=lambda i: (i["o"], i["i"]))
    return items if n is None else items[-n:] if n > 0 else []


def _spread(items: list[dict], n: int | None) -> list[dict]:
    """At most ``n`` samples picked evenly over ``items`` (deterministic, so a re-run scores the same set)."""
    if n is None or len(items) <= n:
        return items
    picks = np.unique(np.linspace(0, len(items) - 1, max(n, 0)).round().astype(np.int64))
    return [items[int(i)] for i in picks]


def _member(offset: int, idx: int, item: LabeledSample) -> str:
    """A sample as the sorted set keeps it: ``x`` holds an integer model's input, ``f`` a float
    one's, ``b`` its content bucket (`content_buckets`, computed once here rather than per read)."""
    values = {"x": item.int_features} if item.int_features else {"f": item.features}
    bucket = float(content_buckets([next(iter(values.values()))])[0])
    return json.dumps({"o": offset, "i": idx, **values, "b": bucket, "l": item.label, "y": item.predicted, "v": item.model_version},
                      separators=(",", ":"))


def _unseen(items: list[dict], holdout_fraction: float) -> list[dict]:
    """The samples whose content every update held back from training (the trainer's holdout rule)."""
    keep = []
    for item in items:
        bucket = item.get("b")
        if bucket is None:  # stored before buckets were: hash it now
            values = item.get("x", item.get("f"))
            bucket = float(content_buckets([values])[0]) if values else 1.0
        if bucket < holdout_fraction:
            keep.append(item)
    return keep


def _to_read(limit: int | None, holdout_fraction: float) -> int | None:
    """How many of the latest samples to read to find ``limit`` held-out ones (a margin of 1.5×)."""
    return None if limit is None else max(limit, int(1.5 * limit / max(holdout_fraction, 1e-3)))


class SampleStore:
    def __init__(self, client, prefix: str, recent_capacity: int = 4000, replay_capacity: int = 2000) -> None:
        self.r = client
        self.p = f"{prefix}deployer:samples:"
        self.recent_capacity = recent_capacity
        self.replay_capacity = replay_capacity

    def _zkey(self, model: str, partition: int) -> str:
        return f"{self.p}{model}:p:{partition}"

    def _parts_key(self, model: str) -> str:
        return f"{self.p}{model}:partitions"

    def _replay_key(self, model: str) -> str:
        return f"{self.p}{model}:replay"

    def _seen_key(self, model: str) -> str:
        return f"{self.p}{model}:replay_seen"

    def _live_key(self, model: str, version: int) -> str:
        return f"{self.p}{model}:live:{version}"

    def add(self, batch: LabeledSampleBatch, partition: int, offset: int, live_window: int = 1000) -> None:
        """Stores one ``cl.samples`` record (idempotent: members are unique per offset and index)."""
        key = self._zkey(batch.model, partition)
        pipe = self.r.pipeline()
        members = {}
        for idx, item in enumerate(batch.items):
            members[_member(offset, idx, item)] = offset
            pipe.lpush(self._live_key(batch.model, item.model_version), int(item.predicted == item.label))
        for version in {i.model_version for i in batch.items}:
            pipe.ltrim(self._live_key(batch.model, version), 0, live_window - 1)
        if members:
            pipe.zadd(key, members)
        pipe.sadd(self._parts_key(batch.model), partition)
        pipe.execute()
        self._evict(batch.model, key)

    def _evict(self, model: str, key: str) -> None:
        overflow = self.r.zcard(key) - self.recent_capacity
        if overflow <= 0:
            return
        evicted = self.r.zrange(key, 0, overflow - 1)
        seen = int(self.r.incrby(self._seen_key(model), 0))
        pipe = self.r.pipeline()
        size = int(self.r.llen(self._replay_key(model)))
        for member in evicted:
            seen += 1
            if size < self.replay_capacity:
                pipe.rpush(self._replay_key(model), member)
                size += 1
            else:
                slot = random.randrange(seen)
                if slot < self.replay_capacity:
                    pipe.lset(self._replay_key(model), slot, member)
        pipe.set(self._seen_key(model), seen)
        pipe.zremrangebyrank(key, 0, overflow - 1)
        pipe.execute()

    def _partitions(self, model: str) -> list[int]:
        return sorted(int(p) for p in self.r.smembers(self._parts_key(model)))

    def _range(self, model: str, partition: int, lo: float | str, hi: float | str, latest: int | None = None) -> list[dict]:
        """The samples scored in [lo, hi], oldest first; with ``latest``, only the last ones (read from the end)."""
        key = self._zkey(model, partition)
        if latest is None:
            return [json.loads(m) for m in self.r.zrangebyscore(key, lo, hi)]
        return [json.loads(m) for m in reversed(self.r.zrevrangebyscore(key, hi, lo, start=0, num=latest))]

    def fresh(self, model: str, ranges: list[dict], holdout_fraction: float, minimum: int, limit: int | None = None) -> SampleSet:
        """Held-out samples (`_unseen`) after the training ranges end, the latest ``limit`` of them;
        if too few, the held-out samples inside the ranges join them (the trainer's own holdout)."""
        read = _to_read(limit, holdout_fraction)
        after: list[dict] = []
        for rng in ranges:
            after += _unseen(self._range(model, rng["partition"], rng["end"], "+inf", latest=read), holdout_fraction)
        if len(after) >= minimum or not ranges:
            return _to_set(_latest(after, limit), "after_training_ranges")
        inside: list[dict] = []
        for rng in ranges:
            inside += _unseen(self._range(model, rng["partition"], rng["start"], f"({rng['end']}", latest=read), holdout_fraction)
        return _to_set(_latest(after + inside, limit), "holdout_of_training_ranges")

    def older(self, model: str, cutoffs: dict[int, int], holdout_fraction: float = 1.0, limit: int | None = None) -> SampleSet:
        """Held-out samples before ``cutoffs`` (partition -> first offset of the newer concept) and in
        the reservoir; with ``limit``, read from the latest before each cutoff and spread evenly down to ``limit``."""
        read = _to_read(limit, holdout_fraction)
        items: list[dict] = []
        for partition in self._partitions(model):
            if partition in cutoffs:
                items += self._range(model, partition, "-inf", f"({cutoffs[partition]}", latest=read)
        for raw in self.r.lrange(self._replay_key(model), 0, -1):
            items.append(json.loads(raw))
        return _to_set(_spread(_unseen(items, holdout_fraction), limit), "before_base_ranges_and_reservoir")

    def latest(self, model: str, n: int) -> SampleSet:
        items: list[dict] = []
        for partition in self._partitions(model):
            items += [json.loads(m) for m in self.r.zrange(self._zkey(model, partition), -n, -1)]
        items.sort(key=lambda i: (i["o"], i["i"]))
        return _to_set(items[-n:], "latest_live")

    def live_outcomes(self, model: str, version: int, n: int) -> list[int]:
        """The last ``n`` live correctness flags (1 = right) of ``version``, newest first."""
        return [int(x) for x in self.r.lrange(self._live_key(model, version), 0, n - 1)]

    def live_count(self, model: str, version: int) -> int:
        return int(self.r.llen(self._live_key(model, version)))
