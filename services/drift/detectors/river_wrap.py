"""River's pure-Python detectors behind the `Detector` interface, with JSON state.

A wrapper holds one River detector and forwards ``update``. Its state is the River object's
``_``-prefixed attributes, encoded by a small codec that knows a fixed allow-list of River
value classes (``stats.Mean``, ``stats.Var``) and deques: decoding never imports or calls
anything named by the data, so a snapshot read back from Redis is data, not code.

Detectors River implements in compiled code (``ADWIN``, ``stats.EWMean`` inside ``HDDM_W``)
cannot be read back this way; ADWIN has its own implementation (`adwin.py`) and HDDM_W is not
offered.
"""

from __future__ import annotations

import collections
import math
from typing import Any, ClassVar

import numpy as np
from numba import njit
from river import drift as river_drift
from river import stats as river_stats

from services.drift.detectors.base import Detector, Param, register

_VALUE_CLASSES: dict[str, type] = {
    "Mean": river_stats.Mean,
    "Var": river_stats.Var,
}


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no inf/nan; keep them as tagged strings.
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, collections.deque):
        return {"$deque": [_encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    name = type(value).__name__
    if _VALUE_CLASSES.get(name) is type(value):
        return {"$obj": name, "attrs": {k: _encode(v) for k, v in vars(value).items()}}
    raise TypeError(f"cannot snapshot a {type(value).__qualname__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$float" in value:
        text = value["$float"]
        if text not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad float {text!r}")
        return float(text)
    if "$deque" in value:
        return collections.deque((_decode(v) for v in value["$deque"]), maxlen=value["maxlen"])
    if "$obj" in value:
        cls = _VALUE_CLASSES.get(value["$obj"])
        if cls is None:
            raise ValueError(f"class {value['$obj']!r} is not allowed in a snapshot")
        obj = cls.__new__(cls)
        for key, attr in value["attrs"].items():
            setattr(obj, key, _decode(attr))
        return obj
    raise ValueError(f"unexpected object in snapshot: {sorted(value)}")


class RiverDetector(Detector):
    """Forwards to one River detector; subclasses name the class and declare its parameters."""

    river_cls: ClassVar[type]

    def _reset(self) -> None:
        self._river = self.river_cls(**self.get_params())

    def update(self, x: float) -> None:
        river = self._river
        river.update(x)
        self._drift_detected = river.drift_detected

    def _get_state(self) -> dict[str, Any]:
        return {
            key: _encode(value)
            for key, value in vars(self._river).items()
            if key.startswith("_") and not callable(value)
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        river = self.river_cls(**self.get_params())
        expected = {k for k, v in vars(river).items() if k.startswith("_") and not callable(v)}
        if set(state) != expected:
            raise ValueError(f"state keys {sorted(state)} differ from {sorted(expected)}")
        for key, value in state.items():
            setattr(river, key, _decode(value))
        self._river = river
        self._drift_detected = river.drift_detected


@register
class PageHinkley(RiverDetector):
    """Page-Hinkley test on a real-valued signal (confidence, input summary)."""

    kind = "page_hinkley"
    river_cls = river_drift.PageHinkley
    PARAMS = {
        "min_instances": Param(int, 30, lambda v: v >= 1, "observations before the first test", ">= 1"),
        "delta": Param(float, 0.005, lambda v: v >= 0, "tolerated change of the mean", ">= 0"),
        "threshold": Param(float, 50.0, lambda v: v > 0, "cumulative deviation that signals drift", "> 0"),
        "alpha": Param(float, 0.9999, lambda v: 0 < v <= 1, "forgetting factor of the cumulative sums", "0 < alpha <= 1"),
        "mode": Param(str, "both", lambda v: v in ("up", "down", "both"), "which change counts", "up|down|both"),
    }

    def update_many(self, values: list[float]) -> list[tuple[int, dict[str, float]]]:
        """River's `PageHinkley.update` over a batch, compiled (`_page_hinkley`); same arithmetic
        in the same order, River's object updated at each drift and at the end."""
        r = self._river
        fired: list[tuple[int, dict[str, float]]] = []
        if r._drift_detected:
            r._reset()
        n = len(values)
        if not n:
            r._drift_detected = self._drift_detected = False
            return fired
        mean = r._x_mean
        state = np.array([mean.n, mean._mean, r._sum_increase, r._sum_decrease, r._min_increase, r._max_decrease], np.float64)
        params = np.array([r.alpha, r.delta, r.threshold, r.min_instances, r.mode in ("up", "both"), r.mode in ("down", "both")], np.float64)
        xs = np.asarray(values, np.float64)
        start = 0
        drift = False
        while True:
            at = _page_hinkley(xs, start, state, params)
            self._put(mean, state)
            if at < 0:
                break
            fired.append((at, self.statistics()))
            if at == n - 1:
                drift = True
                break
            # River starts afresh (a new Mean) at the update after a drift.
            r._x_mean = mean = type(mean)()
            state[:] = (0.0, 0.0, 0.0, 0.0, math.inf, -1.0)
            start = at + 1
        r._drift_detected = self._drift_detected = drift
        return fired

    def _put(self, mean: Any, state: np.ndarray) -> None:
        r = self._river
        mean.n, mean._mean = float(state[0]), float(state[1])
        r._sum_increase, r._sum_decrease, r._min_increase, r._max_decrease = (float(v) for v in state[2:])

    def statistics(self) -> dict[str, float]:
        r = self._river
        return {
            "mean": float(r._x_mean.get()),
            "observations": float(r._x_mean.n),
            "increase": float(r._sum_increase - r._min_increase),
            "decrease": float(r._max_decrease - r._sum_decrease),
        }


@register
class DDM(RiverDetector):
    """Drift Detection Method (Gama et al.) on an error stream."""

    kind = "ddm"
    binary = True
    river_cls = river_drift.binary.DDM
    PARAMS = {
        "warm_start": Param(int, 30, lambda v: v >= 1, "observations before the first test", ">= 1"),
        "warning_threshold": Param(float, 2.0, lambda v: v > 0, "standard deviations for a warning", "> 0"),
        "drift_threshold": Param(float, 3.0, lambda v: v > 0, "standard deviations for a drift", "> 0"),
    }

    def statistics(self) -> dict[str, float]:
        r = self._river
        return {"error_rate": float(r._p.get()), "observations": float(r._p.n), "min_p_plus_s": float(r._ps_min)}


@register
class EDDM(RiverDetector):
    """Early DDM: watches the distance between errors; suits gradual drift."""

    kind = "eddm"
    binary = True
    river_cls = river_drift.binary.EDDM
    PARAMS = {
        "warm_start": Param(int, 30, lambda v: v >= 1, "errors before the first test", ">= 1"),
        "alpha": Param(float, 0.95, lambda v: 0 < v < 1, "warning level", "0 < alpha < 1"),
        "beta": Param(float, 0.9, lambda v: 0 < v < 1, "drift level (below alpha)", "0 < beta < 1"),
    }

    def statistics(self) -> dict[str, float]:
        r = self._river
        return {"observations": float(r._n), "errors": float(r._n_errors), "mean_distance": float(r._error_distances.mean.get())}


@register
class HDDMA(RiverDetector):
    """HDDM with the A-test (Hoeffding bound on moving averages) on an error stream."""

    kind = "hddm_a"
    binary = True
    river_cls = river_drift.binary.HDDMA
    PARAMS = {
        "drift_confidence": Param(float, 0.001, lambda v: 0 < v < 1, "confidence of a drift", "0 < v < 1"),
        "warning_confidence": Param(float, 0.005, lambda v: 0 < v < 1, "confidence of a warning", "0 < v < 1"),
        "two_sided_test": Param(bool, False, lambda v: True, "also report decreases of the error"),
    }

    def statistics(self) -> dict[str, float]:
        r = self._river
        return {"error_rate": float(r._z.get()), "observations": float(r._z.n), "min_error_rate": float(r._x_min.get())}


@njit(cache=True, nogil=True)
def _page_hinkley(xs, start, state, params):  # pragma: no cover - compiled
    """River's PageHinkley updates from ``xs[start]`` until a drift: its index, or -1.

    ``state``: n, mean, sum_increase, sum_decrease, min_increase, max_decrease (updated in
    place); ``params``: alpha, delta, threshold, min_instances, up, down."""
    n, m, s_inc, s_dec, min_inc, max_dec = state[0], state[1], state[2], state[3], state[4], state[5]
    alpha, delta, threshold, min_n = params[0], params[1], params[2], params[3]
    up, down = params[4] != 0.0, params[5] != 0.0
    at = -1
    for i in range(start, xs.shape[0]):
        x = xs[i]
        n += 1.0
        m += (1.0 / n) * (x - m)
        dev = x - m
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        if s_inc < min_inc:
            min_inc = s_inc
        if s_dec > max_dec:
            max_dec = s_dec
        if n >= min_n and ((up and s_inc - min_inc > threshold) or (down and max_dec - s_dec > threshold)):
            at = i
            break
    state[0], state[1], state[2], state[3], state[4], state[5] = n, m, s_inc, s_dec, min_inc, max_dec
    return at
