"""The one small interface every drift detector has, and the registry that lists them.

The shape is River's: constructor arguments are public attributes, learned state lives in
``_``-prefixed attributes rebuilt by ``_reset()``; ``update(x)`` feeds one observation and
``drift_detected`` tells whether it completed a change. Two things are added for a service
that must survive restarts: ``snapshot()`` returns the parameters and the state as plain JSON
data (never pickle: a state read back from Redis must not be able to run code), and
``restore()`` builds an identical detector from it.

A detector class joins the registry with ``@register``; configurations name it by ``kind``.

>>> from services.drift.detectors import build
>>> det = build("adwin", {"delta": 0.002})
>>> for x in [0.0] * 500 + [1.0] * 100:
...     det.update(x)
...     if det.drift_detected:
...         break
>>> det.drift_detected
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from services.drift.errors import DetectorConfigError, DetectorStateError

D = TypeVar("D", bound="Detector")


@dataclass(frozen=True)
class Param:
    """One constructor parameter: its type, default, the values it accepts, and what it means."""

    type: type
    default: Any
    check: Callable[[Any], bool]
    doc: str
    expect: str = ""
    """Human-readable form of ``check`` for error messages (e.g. ``0 < delta < 1``)."""


class Detector(ABC):
    """A streaming change detector: ``update(x)``, then read ``drift_detected``."""

    kind: ClassVar[str] = ""
    """Registry name used by configurations (``"adwin"``, ``"page_hinkley"``, ...)."""
    PARAMS: ClassVar[dict[str, Param]] = {}
    binary: ClassVar[bool] = False
    """True when the detector only makes sense on 0/1 inputs (an error stream)."""

    def __init__(self, **params: Any) -> None:
        for name, value in self.validate_params(params).items():
            setattr(self, name, value)
        self._drift_detected = False
        self._reset()

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Full parameter set (defaults filled in), or `DetectorConfigError` naming the culprit."""
        unknown = set(params) - set(cls.PARAMS)
        if unknown:
            raise DetectorConfigError(f"{cls.kind}: unknown parameters {sorted(unknown)}; known: {sorted(cls.PARAMS)}")
        out: dict[str, Any] = {}
        for name, spec in cls.PARAMS.items():
            value = params.get(name, spec.default)
            if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if spec.type is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, spec.type) or (spec.type is not bool and isinstance(value, bool)):
                raise DetectorConfigError(f"{cls.kind}: {name} must be {spec.type.__name__}, got {value!r}")
            if not spec.check(value):
                raise DetectorConfigError(f"{cls.kind}: {name}={value!r} out of range ({spec.expect or spec.doc})")
            out[name] = value
        return out

    # --- what each detector provides ---------------------------------------------------------
    @abstractmethod
    def _reset(self) -> None:
        """Forget everything learned; parameters stay."""

    @abstractmethod
    def update(self, x: float) -> None:
        """Feed one observation; afterwards ``drift_detected`` says whether it completed a change."""

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Learned state as JSON-safe data."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Inverse of `_get_state`."""

    def update_many(self, values: list[float]) -> list[tuple[int, dict[str, float]]]:
        """Feeds ``values`` in order; returns (index, `statistics()`) for each detected drift.

        The same as calling `update` on each value and reading ``drift_detected`` after it;
        detectors on the hot path override it with a loop that keeps their state in locals.
        """
        fired = []
        update = self.update
        for i, x in enumerate(values):
            update(x)
            if self._drift_detected:
                fired.append((i, self.statistics()))
        return fired

    def statistics(self) -> dict[str, float]:
        """Figures worth reporting in a drift event and as metrics (floats only)."""
        return {}

    # --- shared behaviour ------------------------------------------------------------------
    @property
    def drift_detected(self) -> bool:
        return self._drift_detected

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.PARAMS}

    def clone(self: D) -> D:
        """A fresh detector with the same parameters and no state."""
        return type(self)(**self.get_params())

    def snapshot(self) -> dict[str, Any]:
        """Parameters and state as plain data (``json.dumps`` works on it)."""
        return {"kind": self.kind, "params": self.get_params(), "state": self._get_state()}

    @classmethod
    def restore(cls, snap: Mapping[str, Any]) -> "Detector":
        """The detector a `snapshot` was taken of, behaving identically from here on."""
        try:
            kind, params, state = snap["kind"], snap["params"], snap["state"]
        except (KeyError, TypeError) as exc:
            raise DetectorStateError(f"not a detector snapshot: {exc}") from exc
        det_cls = get(kind)
        if cls is not Detector and not issubclass(det_cls, cls):
            raise DetectorStateError(f"snapshot of {kind} cannot restore into {cls.kind}")
        det = det_cls(**params)
        try:
            det._set_state(state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DetectorStateError(f"{kind}: state does not fit: {exc}") from exc
        return det

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[D]) -> type[D]:
    """Class decorator: makes a detector available to configurations under ``cls.kind``."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise TypeError(f"detector kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def get(kind: str) -> type[Detector]:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise DetectorConfigError(f"unknown detector kind {kind!r}; known: {sorted(_REGISTRY)}") from None


def registered() -> dict[str, type[Detector]]:
    """Every registered detector class by kind."""
    return dict(_REGISTRY)


def build(kind: str, params: Mapping[str, Any] | None = None) -> Detector:
    return get(kind)(**dict(params or {}))
