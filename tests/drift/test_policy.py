"""Update decisions in the real Redis: cooldown, one in flight, and back-off after failed updates."""

from __future__ import annotations

import asyncio

from services.common.settings import RedisSettings
from services.drift.policy import UpdatePolicy

MINUTE = 60_000


def run(redis_settings: RedisSettings, scenario) -> list:
    async def main() -> list:
        client = redis_settings.async_client()
        try:
            policy = UpdatePolicy(client, cooldown_s=60, inflight_timeout_s=3600, failure_backoff_s=600, max_failure_backoff_s=1800)
            return await scenario(policy, f"{redis_settings.key_prefix}drift:{{m}}:")
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_failed_updates_back_off_exponentially_up_to_the_cap_and_a_success_ends_it(redis_settings: RedisSettings):
    async def scenario(policy: UpdatePolicy, prefix: str) -> list:
        out = []
        now = 10 * MINUTE

        async def request(rid: str, at: int) -> str:
            return await policy.request(prefix, rid, at, "{}", rid, b"v", {0: 5})

        for attempt in range(4):
            rid = f"u{attempt}"
            out.append(("request", await request(rid, now)))
            out.append(("answered", await policy.answered(prefix, rid, "failed", now)))
            out.append(("redelivered", await policy.answered(prefix, rid, "failed", now)))
            wait = out[-2][1][2]
            out.append(("just_before", await request(f"early{attempt}", now + wait - 1)))
            now += wait  # the cooldown (60 s) is shorter than every back-off here
        rid = "ok"
        out.append(("request", await request(rid, now)))
        out.append(("answered", await policy.answered(prefix, rid, "succeeded", now)))
        out.append(("after_success", await request("next", now + MINUTE)))
        return out

    steps = run(redis_settings, scenario)
    answers = [v for k, v in steps if k == "answered"]
    assert answers == [(True, 1, 600_000), (True, 2, 1_200_000), (True, 3, 1_800_000), (True, 4, 1_800_000), (True, 0, 0)]
    assert [v for k, v in steps if k == "redelivered"] == [(False, 0, 0)] * 4, "a redelivered candidate counts once"
    assert [v for k, v in steps if k == "just_before"] == ["backoff"] * 4
    assert [v for k, v in steps if k == "request"] == ["requested"] * 5
    assert steps[-1] == ("after_success", "requested"), "after a success only the cooldown applies"


def test_a_candidate_for_another_update_changes_nothing(redis_settings: RedisSettings):
    async def scenario(policy: UpdatePolicy, prefix: str) -> list:
        first = await policy.request(prefix, "a", MINUTE, "{}", "a", b"v", {})
        stale = await policy.answered(prefix, "old", "failed", MINUTE)
        blocked = await policy.request(prefix, "b", 10 * MINUTE, "{}", "b", b"v", {})
        return [first, stale, blocked, await policy.inflight(prefix)]

    assert run(redis_settings, scenario) == ["requested", (False, 0, 0), "in_flight", "a"]
