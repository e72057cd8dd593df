"""What happened to each model: drift events, updates, candidates, deployments, in Redis.

The console keeps its own bounded, per-model view of the CL events (the topics themselves
are the full record): a timeline list for the history page and the chart markers, an
``updates`` hash that follows each update from request to training to deployment (so the page
shows status and duration), and a small state hash behind the models page's drift column.
Each event is applied in one Redis transaction together with its "seen" mark, so a replayed
event (after a crash before the offset commit) changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.common.events import Candidate, DeploymentEvent, DriftEvent, Event, UpdateRequest


@dataclass
class Applied:
    """The outcome of applying one event: what to push to browsers (None when it was a replay)."""

    model: str
    kind: str
    entry: dict[str, Any] | None


def _ranges(ranges) -> list[dict[str, int]]:
    return [{"partition": r.partition, "start": r.start, "end": r.end} for r in ranges]


def entry_of(event: Event) -> tuple[str, dict[str, Any]]:
    """The timeline entry of an event: its kind and the fields the pages show."""
    if isinstance(event, DriftEvent):
        return "drift", {"at_ms": event.detected_at_ms, "version": event.version, "detector": event.detector,
                         "signal": event.signal, "statistics": event.statistics, "observations": event.observations,
                         "offset": {"topic": event.topic, "partition": event.partition, "offset": event.offset}}
    if isinstance(event, UpdateRequest):
        return "update", {"at_ms": event.requested_at_ms, "base_version": event.base_version, "reason": event.reason,
                          "requested_by": event.requested_by, "sample_ranges": _ranges(event.sample_ranges),
                          "strategy": event.strategy, "drift_event_id": event.drift_event_id}
    if isinstance(event, Candidate):
        return "candidate", {"at_ms": event.created_at_ms, "update_id": event.update_id, "outcome": event.outcome,
                             "version": event.version, "base_version": event.base_version, "strategy": event.strategy,
                             "reason": event.reason, "metrics": event.metrics, "samples_used": event.samples_used,
                             "train_seconds": event.train_seconds, "device": event.device}
    if isinstance(event, DeploymentEvent):
        return "deployment", {"at_ms": event.decided_at_ms, "version": event.version, "action": event.action,
                              "previous_version": event.previous_version, "reasons": list(event.reasons),
                              "actor": event.actor}
    raise TypeError(f"no timeline entry for {type(event).__name__}")


class Timeline:
    """Per-model timelines, update tracking and drift state under ``<prefix>console:``."""

    def __init__(self, client, prefix: str, length: int = 500, seen_ttl_s: int = 7 * 24 * 3600) -> None:
        self.r = client
        self.p = f"{prefix}console:"
        self.length = length
        self.seen_ttl_s = seen_ttl_s

    def _k(self, what: str, model: str) -> str:
        return f"{self.p}{what}:{model}"

    def seen(self, event_id: str) -> bool:
        return bool(self.r.exists(f"{self.p}seen:{event_id}"))

    def apply(self, event: Event) -> Applied:
        model = event.model  # type: ignore[attr-defined]
        kind, fields = entry_of(event)
        entry = {"kind": kind, "event_id": event.event_id, "model": model, **fields}  # type: ignore[attr-defined]
        if self.seen(event.event_id):  # type: ignore[attr-defined]
            return Applied(model, kind, None)
        latest = int(self.r.hget(self._k("state", model), f"last_{kind}_ms") or 0)
        pipe = self.r.pipeline(transaction=True)
        pipe.lpush(self._k("timeline", model), json.dumps(entry))
        pipe.ltrim(self._k("timeline", model), 0, self.length - 1)
        if entry["at_ms"] >= latest:  # an older event read late must not roll the drift state back
            pipe.hset(self._k("state", model), mapping={f"last_{kind}_ms": entry["at_ms"], f"last_{kind}": json.dumps(entry)})
        self._track_update(pipe, event, entry)
        pipe.set(f"{self.p}seen:{event.event_id}", 1, ex=self.seen_ttl_s)  # type: ignore[attr-defined]
        pipe.sadd(f"{self.p}models_seen", model)
        pipe.execute()
        return Applied(model, kind, entry)

    def _track_update(self, pipe, event: Event, entry: dict[str, Any]) -> None:
        """Follows an update: requested -> trained/failed -> deployed/held/rejected/rolled back."""
        model = entry["model"]
        updates = self._k("updates", model)
        if isinstance(event, UpdateRequest):
            record = {"id": event.event_id, "status": "requested", "requested_at_ms": event.requested_at_ms,
                      "reason": event.reason, "requested_by": event.requested_by, "base_version": event.base_version,
                      "sample_ranges": entry["sample_ranges"], "strategy": event.strategy}
            current = self._get_update(model, event.event_id) or {}  # a candidate may have come first
            pipe.hset(updates, event.event_id, json.dumps({**record, **{k: v for k, v in current.items() if v is not None}}))
            return
        if isinstance(event, Candidate):
            record = self._get_update(model, event.update_id) or {"id": event.update_id, "requested_at_ms": None}
            record.update(status="trained" if event.outcome == "trained" else event.outcome, version=event.version,
                          train_seconds=event.train_seconds, candidate_at_ms=event.created_at_ms, samples_used=event.samples_used)
            if event.outcome == "failed":  # the trainer's reason: what to fix before the back-off ends
                record["failure"] = event.reason
            self._finish(record, event.created_at_ms if event.outcome != "trained" else None)
            pipe.hset(updates, event.update_id, json.dumps(record))
            if event.version is not None:
                pipe.hset(self._k("update_of_version", model), str(event.version), event.update_id)
            return
        if isinstance(event, DeploymentEvent):
            update_id = self.r.hget(self._k("update_of_version", model), str(event.version))
            if update_id is None:
                return
            record = self._get_update(model, update_id.decode())
            if record is None:
                return
            record["status"] = event.action
            record.setdefault("deployment_history", []).append({"action": event.action, "at_ms": event.decided_at_ms})
            if event.action in ("deployed", "held", "rejected") and "finished_at_ms" not in record:
                self._finish(record, event.decided_at_ms)
            pipe.hset(updates, update_id, json.dumps(record))

    @staticmethod
    def _finish(record: dict[str, Any], at_ms: int | None) -> None:
        if at_ms is None:
            return
        record["finished_at_ms"] = at_ms
        if record.get("requested_at_ms"):
            record["duration_s"] = round((at_ms - record["requested_at_ms"]) / 1000, 3)

    def _get_update(self, model: str, update_id: str) -> dict[str, Any] | None:
        raw = self.r.hget(self._k("updates", model), update_id)
        return json.loads(raw) if raw else None

    # reads ---------------------------------------------------------------------------------------
    def events(self, model: str, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first by the events' own times (events of different topics may be read out of order)."""
        items = [json.loads(x) for x in self.r.lrange(self._k("timeline", model), 0, self.length - 1)]
        items.sort(key=lambda e: e["at_ms"], reverse=True)  # stable: equal times keep the order read
        return [e for e in items if kind is None or e["kind"] == kind][:limit]

    def updates(self, model: str) -> list[dict[str, Any]]:
        """Newest first."""
        items = [json.loads(v) for v in self.r.hvals(self._k("updates", model))]
        return sorted(items, key=lambda u: u.get("requested_at_ms") or u.get("candidate_at_ms") or 0, reverse=True)

    def drift_state(self, model: str) -> dict[str, Any]:
        """``drift`` when a drift came after the last deployment, ``updating`` when an update
        followed it and is still open, else ``ok``."""
        raw = {k.decode(): v.decode() for k, v in self.r.hgetall(self._k("state", model)).items()}
        drift_ms = int(raw.get("last_drift_ms", 0))
        deploy_ms = int(raw.get("last_deployment_ms", 0))
        update_ms = int(raw.get("last_update_ms", 0))
        last_drift = json.loads(raw["last_drift"]) if "last_drift" in raw else None
        if drift_ms and drift_ms > deploy_ms:
            state = "updating" if update_ms >= drift_ms else "drift"
        else:
            state = "ok"
        return {"state": state, "last_drift": last_drift, "last_drift_ms": drift_ms or None,
                "last_deployment_ms": deploy_ms or None, "last_update_ms": update_ms or None}
