"""The Redis join on a real Redis: arrival orders, duplicates, expiry, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from services.common.settings import RedisSettings
from services.drift.join import JoinStore, pack_ids, pack_labels, pack_prediction, pack_prediction_values, source_id, unpack_feedback, unpack_prediction

pytestmark = pytest.mark.usefixtures("redis_server")


def run(redis_settings: RedisSettings, body: Callable[[JoinStore], Any], join_ttl_s: float = 60.0) -> Any:
    async def main() -> Any:
        client = redis_settings.async_client()
        try:
            store = JoinStore(client, redis_settings.key_prefix + "drift:", join_ttl_s, 600.0)
            return await body(store)
        finally:
            await client.aclose()

    return asyncio.run(main())


def preds(partition: int, offset: int, rids: list[str], predicted: int = 1) -> tuple[str, int, bytes, bytes]:
    values = [pack_prediction(3, partition, offset, predicted, 0.75, [0.5, -1.0]) for _ in rids]
    return source_id("p", partition, offset), len(rids), pack_ids(rids), pack_prediction_values(values)


def feedback(partition: int, offset: int, labels: dict[str, int]) -> tuple[str, int, bytes, bytes]:
    return source_id("f", partition, offset), len(labels), pack_ids(list(labels)), pack_labels(list(labels.values()))


def test_feedback_after_before_duplicated_never(redis_settings: RedisSettings) -> None:
    async def body(store: JoinStore) -> None:
        # after: prediction first, then its feedback joins at once
        r = await store.run("p", "m", [preds(0, 10, ["a", "b"])], 0)
        assert r.stored == 2 and r.records[0].joins == []
        r = await store.run("f", "m", [feedback(1, 20, {"a": 2})], 0)
        assert r.joined == 1
        (k, blob), = r.records[0].joins
        assert k == 0 and unpack_prediction(blob)[:5] == (3, 0, 10, 1, 0.75)
        # before: feedback parks, the prediction joins it
        r = await store.run("f", "m", [feedback(1, 21, {"c": 0})], 0)
        assert r.parked == 1 and r.records[0].joins == []
        r = await store.run("p", "m", [preds(0, 11, ["c"])], 0)
        assert r.joined == 1 and unpack_feedback(r.records[0].joins[0][1]) == (0, 1, 21)
        # duplicated: a second label for a joined request, and twice for a parked one
        r = await store.run("f", "m", [feedback(1, 22, {"a": 3, "d": 1}), feedback(1, 23, {"d": 2})], 0)
        assert (r.joined, r.parked, r.duplicate_feedback) == (0, 1, 2)
        # a prediction repeated under another record is a duplicate too
        r = await store.run("p", "m", [preds(0, 12, ["b"])], 0)
        assert r.duplicate_prediction == 1 and r.stored == 0
        stats = await store.stats("m")
        assert stats == {"stored": 2, "joined": 2, "parked": 2, "duplicate_feedback": 2, "duplicate_prediction": 1}

    run(redis_settings, body)


def test_never_matched_feedback_expires_once(redis_settings: RedisSettings) -> None:
    async def body(store: JoinStore) -> None:
        await store.run("f", "m", [feedback(0, 1, {"x": 1, "y": 1})], now_ms=1_000)
        await store.run("p", "m", [preds(0, 5, ["y"])], now_ms=1_500)  # y is matched in time
        assert await store.sweep("m", now_ms=1_000 + 200) == 0
        await asyncio.sleep(0.35)
        assert await store.sweep("m", now_ms=1_000 + 400) == 1  # only x
        assert await store.sweep("m", now_ms=1_000 + 900) == 0
        assert (await store.stats("m"))["expired"] == 1

    run(redis_settings, body, join_ttl_s=0.3)


def test_redelivered_record_returns_the_same_joins_and_counts_nothing(redis_settings: RedisSettings) -> None:
    async def body(store: JoinStore) -> None:
        await store.run("p", "m", [preds(0, 1, ["a", "b", "c"])], 0)
        await store.run("f", "m", [feedback(0, 7, {"z": 1})], 0)  # parked
        first = await store.run("f", "m", [feedback(0, 8, {"a": 1, "b": 0, "q": 2})], 0)
        first_p = await store.run("p", "m", [preds(0, 2, ["z"])], 0)
        before = await store.stats("m")
        again = await store.run("f", "m", [feedback(0, 8, {"a": 1, "b": 0, "q": 2})], 0)
        again_p = await store.run("p", "m", [preds(0, 2, ["z"])], 0)
        assert again.records[0].status == "d" and again.records[0].joins == first.records[0].joins
        assert again_p.records[0].status == "d" and again_p.records[0].joins == first_p.records[0].joins
        assert await store.stats("m") == before
        # once its samples are known to be on the broker, a redelivery is marked so
        await store.run("p", "m", [], 0, published=[source_id("f", 0, 8)])
        marked = await store.run("f", "m", [feedback(0, 8, {"a": 1, "b": 0, "q": 2})], 0)
        assert marked.records[0].status == "o" and marked.records[0].joins == first.records[0].joins

    run(redis_settings, body)


def test_many_batches_in_one_call_keep_order(redis_settings: RedisSettings) -> None:
    async def body(store: JoinStore) -> None:
        rids = [f"r{i}" for i in range(300)]
        await store.run("f", "m", [feedback(2, 100 + i, {rid: i % 4}) for i, rid in enumerate(rids[:150])], 0)
        result = await store.run("p", "m", [preds(1, j, rids[j * 100 : (j + 1) * 100]) for j in range(3)], 0)
        assert [len(r.joins) for r in result.records] == [100, 50, 0]
        assert result.joined == 150 and result.stored == 150
        assert [unpack_feedback(v)[2] for _, v in result.records[1].joins] == list(range(200, 250))

    run(redis_settings, body)


def test_a_duplicate_of_parked_feedback_keeps_the_first_label_and_its_deadline(redis_settings: RedisSettings) -> None:
    async def body(store: JoinStore) -> None:
        await store.run("f", "m", [feedback(0, 1, {"x": 2})], now_ms=1_000)
        r = await store.run("f", "m", [feedback(0, 2, {"x": 3})], now_ms=1_100)
        assert (r.parked, r.duplicate_feedback) == (0, 1)
        key = store.model_prefix("m") + "r:x"
        assert await store.redis.get(key) == b"F2:0:1"
        assert 0 < await store.redis.pttl(key) <= 60_000 - 100  # the first deadline, not a new one
        r = await store.run("p", "m", [preds(0, 9, ["x"])], now_ms=1_200)
        assert r.joined == 1 and unpack_feedback(r.records[0].joins[0][1]) == (2, 0, 1)

    run(redis_settings, body)


def test_a_record_handled_by_the_earlier_layout_is_answered_from_its_joined_keys(redis_settings: RedisSettings) -> None:
    """Workers before the per-record answer kept the joins in ``J<source>|<feedback>|<prediction>``."""

    async def body(store: JoinStore) -> None:
        prefix = store.model_prefix("m")
        blob = pack_prediction(3, 0, 4, 1, 0.5, [1.0])
        await store.redis.set(prefix + "s:f:0:8", "d")
        await store.redis.set(prefix + "r:a", b"Jf:0:8|2:0:8|" + blob)
        await store.redis.set(prefix + "r:b", b"Jf:0:7|1:0:7|" + blob)  # joined by another record
        again = await store.run("f", "m", [feedback(0, 8, {"a": 2, "b": 1, "c": 0})], 0)
        assert again.records[0].status == "d" and again.records[0].joins == [(0, blob)]
        assert await store.stats("m") == {}

    run(redis_settings, body)


def test_calls_sent_at_once_run_in_order_and_survive_a_lost_connection(redis_settings: RedisSettings, caplog: pytest.LogCaptureFixture) -> None:
    """The join script's own connection: many calls in flight, answered in the order sent; when
    the connection is killed mid-stream, the unanswered calls are sent again and each record is
    joined once (a call that ran before the loss answers as a redelivery)."""

    async def body(store: JoinStore) -> None:
        rids = [f"q{i}" for i in range(4000)]
        calls = [store.send("p", "m", [preds(0, j, rids[j * 100 : (j + 1) * 100])], 0) for j in range(40)]
        killed = False
        answers = []
        for j in range(40):
            calls.append(store.send("f", "m", [feedback(1, j, {rid: 2 for rid in rids[j * 100 : (j + 1) * 100]})], 0))
            if j == 20 and not killed:
                # every connection of the script's client name is the ordered one: kill it
                killed = bool(await store.redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
        for call in calls:
            answers.append(await asyncio.wait_for(call, 30))
        assert killed
        feedback_answers = answers[40:]
        # every feedback record joined its hundred predictions, first time or as a redelivery
        assert [len(a.records[0].joins) for a in feedback_answers] == [100] * 40
        assert await store.stats("m") == {"stored": 4000, "joined": 4000}

    with caplog.at_level("WARNING", logger="modelci.drift.redis"):
        run(redis_settings, body)
    assert any("resent after reconnecting" in r.getMessage() for r in caplog.records)
