"""The drift service's own cost, without Faust or a consumer: ``python -m benchmarks.drift.inprocess``.

Encodes the benchmark's traffic in memory, then drives `DriftService.begin` / `complete` the way
the agents do (steps of ``take`` records, predictions and feedback alternating, pipelined)
against a real Redis and Kafka (for the samples), in this process. Prints the events per second,
the CPU time of this process's main thread per event and Redis's CPU time per event (from
``INFO cpu``), so that a change to the hot path can be measured in seconds, apart from the
consumer and the broker. Uses ``MODELCI_KAFKA_BOOTSTRAP_SERVERS`` / ``MODELCI_REDIS_URL`` when
set, else starts its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import uuid

from services.common.events import Feedback, FeedbackBatch, PredictionBatch
from services.common.kafka import ensure_topics
from services.common.serde import encode_event
from services.common.topics import FEEDBACK, PREDICTIONS
from benchmarks.drift.stack import endpoints
from benchmarks.drift.workload import Traffic, chunks
from services.drift.records import InRecord
from services.drift.service import DriftService
from services.drift.settings import DriftSettings
from services.drift.worker import topic_plan


def traffic(pairs: int, models: int, batch: int, lag: int) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """(model index, record) lists of prediction and feedback batches, as the bench publishes them."""
    preds, fbs = [], []
    for m in range(models):
        t = Traffic(model=f"bench-{m}", events=pairs // models, seed=m, error_before=0.1, error_after=0.1)
        ps = list(chunks(list(t.predictions()), batch))
        ls = list(chunks([(r, label) for r, label, _ in t.labels()], batch))
        for k in range(len(ps) + lag):
            if k < len(ps):
                preds.append((m, encode_event(PredictionBatch(model=t.model, version=1, items=ps[k]))))
            if 0 <= k - lag < len(ps):
                fbs.append((m, encode_event(FeedbackBatch(model=t.model, items=[Feedback(request_id=r, label=x) for r, x in ls[k - lag]]))))
    return preds, fbs


async def measure(ep, pairs: int, models: int, batch: int, lag: int, take: int, cpu: int | None) -> dict:
    settings = DriftSettings(kafka=ep.kafka, redis=ep.redis)
    ensure_topics(ep.kafka, topic_plan(settings))
    preds, fbs = traffic(pairs, models, batch, lag)

    def records(topic: str, items: list[tuple[int, bytes]]) -> list[InRecord]:
        offsets = [0] * models
        out = []
        for m, value in items:
            out.append(InRecord(ep.kafka.topic(topic), m % settings.partitions, offsets[m], f"bench-{m}".encode(), value))
            offsets[m] += 1
        return out

    p_recs, f_recs = records(PREDICTIONS, preds), records(FEEDBACK, fbs)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})  # after Kafka and Redis started, so they are not pinned
    service = DriftService(settings)
    await service.start()
    gc.collect()
    gc.freeze()
    redis_cpu = await service.redis.info("cpu")
    wall, main_cpu = time.perf_counter(), time.thread_time()
    pending = []
    for i in range(0, max(len(p_recs), len(f_recs)), take):
        for topic, recs in ((PREDICTIONS, p_recs), (FEEDBACK, f_recs)):
            if i < len(recs):
                step = await service.begin(topic, recs[i : i + take])
                pending.append(asyncio.ensure_future(service.complete(step)))
    durable = await asyncio.gather(*pending)
    wall, main_cpu = time.perf_counter() - wall, time.thread_time() - main_cpu
    after = await service.redis.info("cpu")
    await asyncio.gather(*durable)
    stats = [await service.joins.stats(f"bench-{m}") for m in range(models)]
    await service.stop()
    events = 2 * (pairs // models) * models

    def redis_seconds(info: dict) -> float:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return {
        "events": events,
        "eps": round(events / wall),
        "main_cpu_us_per_event": round(main_cpu / events * 1e6, 3),
        "redis_cpu_us_per_event": round((redis_seconds(after) - redis_seconds(redis_cpu)) / events * 1e6, 3),
        "joined": sum(s.get("joined", 0) for s in stats),
        "parked": sum(s.get("parked", 0) for s in stats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="prediction/feedback pairs")
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="events per Kafka record")
    parser.add_argument("--lag", type=int, default=20, help="records the feedback trails its predictions by")
    parser.add_argument("--take", type=int, default=64, help="records per step")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1, help="core to pin this process to (-1: none)")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    with endpoints(f"inproc{tag}.", f"inproc{tag}:") as ep:
        result = asyncio.run(measure(ep, args.pairs, args.models, args.batch, args.lag, args.take, None if args.cpu < 0 else args.cpu))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
