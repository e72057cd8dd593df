"""What the pages and the API show, assembled from the registry, the timeline and live accuracy.

One place builds these dicts so the JSON API and the HTML pages never disagree.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from services.common.registry import ModelRegistry
from services.console.accuracy import AccuracyTracker
from services.console.errors import NotFound
from services.console.timeline import Timeline

MARKER_KINDS = ("drift", "update", "deployment")


class Views:
    def __init__(self, registry: ModelRegistry, timeline: Timeline, accuracy: AccuracyTracker) -> None:
        self.registry = registry
        self.timeline = timeline
        self.accuracy = accuracy

    def _model(self, name: str):
        model = self.registry.get_model(name)
        if model is None:
            raise NotFound(f"unknown model {name!r}")
        return model

    def summary(self, model) -> dict[str, Any]:
        latest = self.accuracy.latest(model.name)
        serving = latest.get(model.serving_version) if model.serving_version is not None else None
        versions = self.registry.list_versions(model.name)
        return {
            "name": model.name,
            "serving_version": model.serving_version,
            "previous_version": model.previous_version,
            "classes": model.classes,
            "input_shape": model.input_shape,
            "datatype": model.datatype,
            "strategy": model.strategy,
            "hyperparameters": model.hyperparameters,
            "policy": model.policy,
            "live_accuracy": serving["accuracy"] if serving else None,
            "live_samples": serving["samples"] if serving else 0,
            "accuracy_by_version": {str(v): p["accuracy"] for v, p in sorted(latest.items())},
            "drift": self.timeline.drift_state(model.name),
            "held_versions": [v.version for v in versions if str(v.status) == "held"],
            "versions": len(versions),
            "updated_at_ms": model.updated_at_ms,
        }

    def models(self) -> list[dict[str, Any]]:
        return [self.summary(m) for m in self.registry.list_models()]

    def model(self, name: str) -> dict[str, Any]:
        return self.summary(self._model(name))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Newest first, each with its lineage: base version, data offsets, strategy, report."""
        self._model(name)
        return [asdict(v) for v in reversed(self.registry.list_versions(name))]

    def version(self, name: str, version: int) -> dict[str, Any]:
        self._model(name)
        record = self.registry.get_version(name, version)
        if record is None:
            raise NotFound(f"model {name!r} has no version {version}")
        return asdict(record)

    def events(self, name: str, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        self._model(name)
        return self.timeline.events(name, limit=limit, kind=kind)

    def updates(self, name: str) -> list[dict[str, Any]]:
        self._model(name)
        return self.timeline.updates(name)

    def accuracy_series(self, name: str, limit: int = 720) -> dict[str, Any]:
        """Points of the chart plus the drift/update/deployment markers inside its time span."""
        self._model(name)
        points = self.accuracy.series(name, limit)
        markers = [{"kind": e["kind"], "at_ms": e["at_ms"], "version": e.get("version"), "action": e.get("action")}
                   for e in self.timeline.events(name, limit=self.timeline.length) if e["kind"] in MARKER_KINDS]
        return {"points": points, "markers": list(reversed(markers))}
