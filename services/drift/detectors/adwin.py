"""ADWIN (Bifet & Gavaldà, 2007) in plain Python, so that its window can be saved and restored.

River 0.26's ``drift.ADWIN`` keeps its window inside a compiled object that can be neither
read nor rebuilt, so a restarted worker would lose it. This implementation follows the same
algorithm (exponential histogram of buckets, a cut test every ``clock`` updates, the whole
detector reset after a detection as River does) with the same parameters, and keeps the buckets
in lists that `snapshot` turns into JSON. The conformance tests check that it fires at the same
indices as River's on seeded streams.

One addition: ``direction``. ADWIN reacts to any change of the mean; on an error stream only an
increase is bad news (a better model after an update lowers the error), so ``direction="up"``
reports a drift only when the newer part of the window has the larger mean. The window is cut
either way, as ADWIN always does.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from services.drift.detectors.base import Detector, Param, register

# Bucket sizes by row: 1, 2, 4, ... (64 rows cover any window a float can count).
_SIZES = np.array([float(1 << i) for i in range(64)])


@register
class ADWIN(Detector):
    """Adaptive windowing: keeps the longest recent window whose mean looks stationary."""

    kind = "adwin"
    PARAMS = {
        "delta": Param(float, 0.002, lambda v: 0.0 < v < 1.0, "significance of the cut test", "0 < delta < 1"),
        "clock": Param(int, 32, lambda v: v >= 1, "test for a cut every this many updates", ">= 1"),
        "max_buckets": Param(int, 5, lambda v: v >= 2, "buckets of each size kept before merging", ">= 2"),
        "min_window_length": Param(int, 5, lambda v: v >= 1, "smallest sub-window a cut may leave", ">= 1"),
        "grace_period": Param(int, 10, lambda v: v >= 1, "observations before the first test", ">= 1"),
        "direction": Param(str, "both", lambda v: v in ("both", "up", "down"), "which change of the mean counts", "both|up|down"),
    }

    def _reset(self) -> None:
        # Row i holds the totals (and variances) of buckets of 2**i observations, oldest first.
        self._totals: list[list[float]] = [[]]
        self._variances: list[list[float]] = [[]]
        self._width = 0
        self._total = 0.0
        self._variance = 0.0
        self._tick = 0
        self._mean_before = math.nan
        self._mean_after = math.nan

    @property
    def width(self) -> int:
        return self._width

    @property
    def estimation(self) -> float:
        return self._total / self._width if self._width else 0.0

    def update(self, x: float) -> None:
        if self._drift_detected:
            self._reset()
            self._drift_detected = False
        x = float(x)
        # Insert as a new bucket of size 1, keeping the window's variance incrementally.
        row0 = self._totals[0]
        row0.append(x)
        self._variances[0].append(0.0)
        width = self._width + 1
        if width > 1:
            d = x - self._total / (width - 1)
            self._variance += (width - 1) * d * d / width
        self._width = width
        self._total += x
        if len(row0) > self.max_buckets:
            self._compress()
        self._tick += 1
        if self._tick % self.clock == 0 and width > self.grace_period:
            self._test()

    def update_many(self, values: list[float]) -> list[tuple[int, dict[str, float]]]:
        """`update` over a list, several times faster, with identical results.

        Between two tests of the window (every ``clock`` updates) nothing reads the buckets,
        so the values up to the next test are appended at once and each row merges its
        overflow in one pass (`_cascade`): a row is a FIFO whose merges depend only on the
        order of what enters it, so the buckets (and their float sums) come out the same as
        after one-by-one insertion.
        """
        fired: list[tuple[int, dict[str, float]]] = []
        clock, grace, max_buckets = self.clock, self.grace_period, self.max_buckets
        if self._drift_detected:
            self._reset()
            self._drift_detected = False
        n = len(values)
        i = 0
        while i < n:
            k = min(n - i, clock - self._tick % clock)
            chunk = [float(x) for x in values[i : i + k]]
            width, total, variance = self._width, self._total, self._variance
            for x in chunk:
                width += 1
                if width > 1:
                    d = x - total / (width - 1)
                    variance += (width - 1) * d * d / width
                total += x
            self._width, self._total, self._variance = width, total, variance
            row0 = self._totals[0]
            row0.extend(chunk)
            self._variances[0].extend([0.0] * k)
            if len(row0) > max_buckets:
                self._cascade()
            self._tick += k
            i += k
            if self._tick % clock == 0 and width > grace:
                self._test()
                if self._drift_detected:
                    fired.append((i - 1, self.statistics()))
                    if i == n:
                        return fired  # the state stays readable until the next update, as with `update`
                    # River resets the whole detector at the update after a drift.
                    self._reset()
                    self._drift_detected = False
        return fired

    def _cascade(self) -> None:
        """Merges every overflow of every row, oldest pairs first, in one pass per row."""
        max_buckets = self.max_buckets
        totals, variances = self._totals, self._variances
        idx = 0
        while idx < len(totals):
            row_t = totals[idx]
            length = len(row_t)
            if length <= max_buckets:
                break
            m2 = 2 * ((length - max_buckets - 1) // 2 + 1)
            row_v = variances[idx]
            size = float(1 << idx)
            first_t, second_t = row_t[0:m2:2], row_t[1:m2:2]
            merged_t = [a + b for a, b in zip(first_t, second_t)]
            merged_v = [
                va + vb + size * 0.5 * (d := a / size - b / size) * d
                for a, b, va, vb in zip(first_t, second_t, row_v[0:m2:2], row_v[1:m2:2])
            ]
            del row_t[:m2]
            del row_v[:m2]
            if idx + 1 == len(totals):
                totals.append([])
                variances.append([])
            totals[idx + 1].extend(merged_t)
            variances[idx + 1].extend(merged_v)
            idx += 1

    def _compress(self) -> None:
        """Merges the two oldest buckets of each full row into one of the next size."""
        limit = self.max_buckets + 1
        totals, variances = self._totals, self._variances
        idx = 0
        while len(totals[idx]) == limit:
            if idx + 1 == len(totals):
                totals.append([])
                variances.append([])
            row_t, row_v = totals[idx], variances[idx]
            t0, t1 = row_t[0], row_t[1]
            size = float(1 << idx)
            mu1 = t0 / size
            mu2 = t1 / size
            totals[idx + 1].append(t0 + t1)
            variances[idx + 1].append(row_v[0] + row_v[1] + size * 0.5 * (mu1 - mu2) * (mu1 - mu2))
            del row_t[:2]
            del row_v[:2]
            idx += 1

    def _drop_oldest(self) -> None:
        last = len(self._totals) - 1
        size = float(1 << last)
        u = self._totals[last][0]
        v = self._variances[last][0]
        mu = u / size
        self._width -= int(size)
        self._total -= u
        width = float(self._width)
        if width > 0:
            mu_w = self._total / width
            self._variance -= v + size * width * (mu - mu_w) * (mu - mu_w) / (size + width)
        else:
            self._variance = 0.0
        del self._totals[last][0]
        del self._variances[last][0]
        if not self._totals[last] and last > 0:
            self._totals.pop()
            self._variances.pop()

    def _test(self) -> None:
        """Checks every cut of the window, oldest first; drops old buckets while a cut holds.

        The cuts are evaluated as numpy vectors (one pass instead of a Python loop over ~80
        buckets), with the same operations in the same order as the sequential algorithm, so
        the decisions are bit-for-bit those of River's ADWIN.
        """
        mwl = float(self.min_window_length)
        detected = False
        while self._width > 0:
            rows = self._totals
            counts = [len(row) for row in reversed(rows)]
            n_buckets = sum(counts)
            if n_buckets < 2:
                break
            width = float(self._width)
            # Buckets oldest first: rows from the largest size down, each oldest first. A cut
            # after bucket j splits the window into W0 (buckets 0..j) and W1 (the rest); the
            # newest bucket is never cut off.
            t = np.fromiter(itertools.chain.from_iterable(reversed(rows)), dtype=np.float64, count=n_buckets)
            n0 = np.cumsum(np.repeat(_SIZES[len(rows) - 1 :: -1], counts))[:-1]
            lo = int(np.searchsorted(n0, mwl, side="left"))
            hi = int(np.searchsorted(n0, width - mwl, side="right"))
            if lo >= hi:
                break
            u0 = np.cumsum(t)[lo:hi]
            u1 = np.subtract.accumulate(np.concatenate(([self._total], t)))[lo + 1 : hi + 1]
            n0 = n0[lo:hi]
            n1 = width - n0
            delta_prime = math.log(2.0 * math.log(width) / self.delta)
            m_recip = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
            eps = np.sqrt(2.0 * m_recip * (self._variance / width) * delta_prime) + 2.0 / 3.0 * delta_prime * m_recip
            cut = np.abs(u0 / n0 - u1 / n1) > eps
            first = int(cut.argmax())
            if not cut[first]:
                break
            if not detected:
                self._mean_before = float(u0[first] / n0[first])
                self._mean_after = float(u1[first] / n1[first])
            detected = True
            self._drop_oldest()
        if detected:
            rising = self._mean_after > self._mean_before
            self._drift_detected = self.direction == "both" or (self.direction == "up") == rising

    def statistics(self) -> dict[str, float]:
        return {
            "estimation": self.estimation,
            "width": float(self._width),
            "variance": self._variance / self._width if self._width else 0.0,
            "mean_before": self._mean_before,
            "mean_after": self._mean_after,
        }

    def _get_state(self) -> dict[str, Any]:
        return {
            "drift_detected": self._drift_detected,
            "totals": [list(r) for r in self._totals],
            "variances": [list(r) for r in self._variances],
            "width": self._width,
            "total": self._total,
            "variance": self._variance,
            "tick": self._tick,
            "mean_before": _finite_or_none(self._mean_before),
            "mean_after": _finite_or_none(self._mean_after),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        totals = [[float(v) for v in row] for row in state["totals"]]
        variances = [[float(v) for v in row] for row in state["variances"]]
        if len(totals) != len(variances) or any(len(a) != len(b) for a, b in zip(totals, variances)):
            raise ValueError("bucket rows of totals and variances differ")
        if any(len(row) > self.max_buckets for row in totals) or not totals:
            raise ValueError("bucket rows longer than max_buckets")
        self._totals, self._variances = totals, variances
        self._drift_detected = bool(state["drift_detected"])
        self._width = int(state["width"])
        self._total = float(state["total"])
        self._variance = float(state["variance"])
        self._tick = int(state["tick"])
        self._mean_before = math.nan if state["mean_before"] is None else float(state["mean_before"])
        self._mean_after = math.nan if state["mean_after"] is None else float(state["mean_after"])


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
