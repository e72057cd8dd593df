"""Which consumed offsets may be committed: only those whose output the broker acknowledged.

Every consumed record yields exactly one output record (its share of a prediction batch, or a
dead letter). The worker `track`s each offset when it consumes it and marks it `done` in the
delivery callback of its output; the commit point of a partition is the first offset that is
not done yet, so a crash at any moment replays every unacknowledged request and loses none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class _Partition:
    __slots__ = ("order", "done", "position", "committed")

    def __init__(self) -> None:
        self.order: deque[int] = deque()  # offsets in consumption order (increasing)
        self.done: set[int] = set()
        self.position: int | None = None  # offset after the last of the done prefix
        self.committed: int | None = None  # last position the broker confirmed


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _Partition] = {}

    def track(self, tp: TopicPartition, offset: int) -> None:
        self._parts.setdefault(tp, _Partition()).order.append(offset)

    def done(self, tp: TopicPartition, offset: int) -> None:
        """Marks one offset's output acknowledged; unknown partitions (revoked) are ignored."""
        part = self._parts.get(tp)
        if part is not None:
            part.done.add(offset)

    def is_pending(self, tp: TopicPartition, offset: int) -> bool:
        """Whether ``offset`` is tracked and not done (False once its partition was forgotten)."""
        part = self._parts.get(tp)
        return part is not None and offset not in part.done and offset in part.order

    def commit_points(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit now (first one not done), where it moved since
        the last confirmed commit. A failed commit is simply offered again next time."""
        out: dict[TopicPartition, int] = {}
        for tp, part in self._parts.items():
            while part.order and part.order[0] in part.done:
                last = part.order.popleft()
                part.done.discard(last)
                part.position = last + 1
            if part.position is not None and part.position != part.committed:
                out[tp] = part.position
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Records that the broker confirmed these commit points."""
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)

    def pending(self) -> int:
        """Offsets tracked whose output is not acknowledged yet."""
        return sum(len(p.order) - len(p.done) for p in self._parts.values())
