"""Feedback steps wait for the predictions agent to reach their time, and never longer than needed."""

from __future__ import annotations

import asyncio

from services.drift.alignment import Alignment
from services.drift.records import InRecord


def rec(partition: int, offset: int, timestamp: float) -> InRecord:
    return InRecord("t", partition, offset, b"m", b"", timestamp)


def test_feedback_waits_for_predictions_of_its_partition_and_time() -> None:
    async def main() -> None:
        align = Alignment(max_wait_s=5.0)
        align.predictions_begun([rec(0, 1, 100.0), rec(1, 1, 50.0)])
        feedback = [rec(0, 7, 90.0), rec(1, 7, 60.0)]
        assert align.behind(feedback, lambda p: False) == [1]
        waiting = asyncio.ensure_future(align.wait(feedback, lambda p: False))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # partition 1's predictions are older than its feedback
        align.predictions_begun([rec(1, 2, 61.0)])
        held = await asyncio.wait_for(waiting, 1.0)
        assert 0.1 <= held < 1.0

    asyncio.run(main())


def test_caught_up_predictions_or_the_deadline_release_feedback() -> None:
    async def main() -> None:
        align = Alignment(max_wait_s=0.3)
        feedback = [rec(2, 1, 10.0)]
        assert await align.wait(feedback, lambda p: True) == 0.0  # nothing more to read there
        held = await align.wait(feedback, lambda p: False)  # behind and still reading: deadline
        assert 0.3 <= held < 0.6
        assert await Alignment(max_wait_s=0.0).wait(feedback, lambda p: False) == 0.0

    asyncio.run(main())
