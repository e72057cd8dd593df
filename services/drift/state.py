"""Everything the service knows about one model, and its JSON snapshot.

A model's state lives in memory in the worker that owns the model's partitions and is saved to
Redis (``<prefix>{model}:state``) periodically, on drift, on revocation and at shutdown. The
snapshot carries *watermarks*: per input partition, the offset of the last record whose
observations the detectors have seen. After a crash, records up to a watermark are redelivered
but not fed to the detectors again, and records after it are, so every observation reaches
the detectors exactly once and their state continues where it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from services.drift.config import DetectorSpec
from services.drift.detectors import Detector

SNAPSHOT_VERSION = 1


@dataclass
class Slot:
    """One configured detector of a model with its counters."""

    spec: DetectorSpec
    detector: Detector
    observations: int = 0
    detections: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "key": self.spec.key(),
            "detector": self.detector.snapshot(),
            "observations": self.observations,
            "detections": self.detections,
        }


@dataclass
class Firing:
    """A detector reported a drift while a record was applied."""

    slot: Slot
    statistics: dict[str, float]
    topic: str
    partition: int
    offset: int
    observations: int


class ModelState:
    """Detectors, counters and update bookkeeping of one model."""

    def __init__(self, model: str, specs: list[DetectorSpec]) -> None:
        self.model = model
        self.slots: dict[str, Slot] = {s.name: Slot(s, _build(s)) for s in specs}
        self.version = -1
        self.watermarks: dict[str, int] = {}
        self.samples = 0
        """Joined samples applied to the detectors (exactly once each)."""
        self.predictions = 0
        self.pending: dict[str, Any] | None = None
        """A triggering drift waiting for ``min_samples`` samples: drift_event_id, detector, at_samples."""
        self.sample_ends: dict[int, int] = {}
        """cl.samples partition -> offset after the last acknowledged sample batch of this model."""
        self.sources: set[tuple[str, int]] = set()
        self.dirty = False
        self.requesting = False
        self.outbox: dict[str, tuple[str, bytes]] = {}
        """Drift events and update requests saved to Redis, not yet acknowledged by the broker."""
        self._by_signal: dict[str, list[Slot]] = {}
        self._index()

    def _index(self) -> None:
        self._by_signal = {"error": [], "confidence": [], "input": []}
        for slot in self.slots.values():
            self._by_signal[slot.spec.signal].append(slot)

    def slots_for(self, signal: str) -> list[Slot]:
        return self._by_signal[signal]

    def reset_detectors(self) -> None:
        """A new model version serves: what the detectors learned describes the old one."""
        for slot in self.slots.values():
            slot.detector = _build(slot.spec)
        self.pending = None

    # --- applying observations ----------------------------------------------------------------
    def applies(self, source: str, offset: int) -> bool:
        """True when the record at ``offset`` has not been fed to the detectors yet."""
        return offset > self.watermarks.get(source, -1)

    def feed(self, signal: str, values: list[float], topic: str, partition: int, offset: int) -> list[Firing]:
        """Feeds values to every detector of ``signal``; returns the drifts they reported."""
        firings: list[Firing] = []
        if not values:
            return firings
        for slot in self._by_signal[signal]:
            for i, stats in slot.detector.update_many(values):
                slot.detections += 1
                firings.append(Firing(slot, stats, topic, partition, offset, slot.observations + i + 1))
            slot.observations += len(values)
        return firings

    # --- snapshot -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "v": SNAPSHOT_VERSION,
            "model": self.model,
            "version": self.version,
            "watermarks": dict(self.watermarks),
            "samples": self.samples,
            "predictions": self.predictions,
            "pending": self.pending,
            "sample_ends": {str(p): o for p, o in self.sample_ends.items()},
            "slots": {name: slot.snapshot() for name, slot in self.slots.items()},
        }

    @classmethod
    def restore(cls, model: str, specs: list[DetectorSpec], data: dict[str, Any] | None) -> "ModelState":
        """State from a snapshot; detectors whose configuration changed since start afresh."""
        state = cls(model, specs)
        if not data:
            return state
        state.version = int(data.get("version", -1))
        state.watermarks = {k: int(v) for k, v in data.get("watermarks", {}).items()}
        state.samples = int(data.get("samples", 0))
        state.predictions = int(data.get("predictions", 0))
        state.pending = data.get("pending")
        state.sample_ends = {int(p): int(o) for p, o in data.get("sample_ends", {}).items()}
        for name, saved in data.get("slots", {}).items():
            slot = state.slots.get(name)
            if slot is None or saved.get("key") != slot.spec.key():
                continue
            slot.detector = Detector.restore(saved["detector"])
            slot.observations = int(saved.get("observations", 0))
            slot.detections = int(saved.get("detections", 0))
        return state

    def main_value(self, slot: Slot) -> float:
        stats = slot.detector.statistics()
        for key in ("estimation", "error_rate", "mean"):
            value = stats.get(key)
            if value is not None and math.isfinite(value):
                return float(value)
        return math.nan


def _build(spec: DetectorSpec) -> Detector:
    from services.drift.detectors import build

    return build(spec.kind, spec.params)


@dataclass
class Outputs:
    """What handling one input record produced (before publication)."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
