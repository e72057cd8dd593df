"""The ML team's actions, turned into events the owning services execute.

Approve, reject, roll back, change strategy or policy become a `Command` on ``cl.commands``;
"update now" becomes an `UpdateRequest` on ``cl.updates`` with reason ``manual``, the serving
version as base and no sample ranges (the trainer reads that as "every sample since the base
version"). The console never changes serving state itself: the deployer and trainer do, and
their events come back through the timeline. Each action is audited with its outcome: sent
(acknowledged by the broker), refused (it made no sense for the model's state) or failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from services.common import topics
from services.console.sample_offsets import SampleOffsets
from services.common.events import Command, Event, UpdateRequest
from services.common.registry import ModelRegistry, VersionStatus
from services.console.audit import AuditLog
from services.console.errors import Conflict, InvalidRequest, NotFound

Publish = Callable[[str, Event], None]
"""Sends an event to a logical topic and returns once the broker acknowledged it."""

_STRATEGY = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
PROMOTIONS = ("auto", "manual")

def _stringify(params: dict[str, Any]) -> dict[str, str]:
    """Command params are a string map on the wire; non-strings travel as JSON."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}

class Actions:
    def __init__(self, registry: ModelRegistry, audit: AuditLog, publish: Publish, metrics=None,
                 offsets: SampleOffsets | None = None) -> None:
        self.registry = registry
        self.offsets = offsets
        self.audit = audit
        self.publish = publish
        self.metrics = metrics

    def _model(self, name: str):
        model = self.registry.get_model(name)
        if model is None:
            raise NotFound(f"unknown model {name!r}")
        return model

    def _version(self, name: str, version: int):
        record = self.registry.get_version(name, version)
        if record is None:
            raise NotFound(f"model {name!r} has no version {version}")
        return record

    def _send(self, topic: str, event: Event, actor: str, action: str, *, model: str, version: int | None,
              params: dict[str, Any]) -> Event:
        try:
            self.publish(topic, event)
        except Exception as exc:
            self.audit.record(actor, action, "failed", model=model, version=version, params=params,
                              event_id=event.event_id, detail=f"{type(exc).__name__}: {exc}")
            self._count(action, "failed")
            raise
        self.audit.record(actor, action, "sent", model=model, version=version, params=params, event_id=event.event_id)
        self._count(action, "sent")
        return event

    def _refuse(self, actor: str, action: str, model: str, version: int | None, params: dict[str, Any], exc: Exception):
        self.audit.record(actor, action, "refused", model=model, version=version, params=params, detail=str(exc))
        self._count(action, "refused")
        raise exc

    def _count(self, action: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.actions.labels(action, outcome).inc()

    def command(self, actor: str, model: str, action: str, version: int | None = None, **params: Any) -> Command:
        cmd = Command(model=model, action=action, actor=actor, version=version, params=_stringify(params))

        return self._send(topics.COMMANDS, cmd, actor, action, model=model, version=version, params=params)  # type: ignore[return-value]

    # the actions ---------------------------------------------------------------------------------
    def approve(self, actor: str, name: str, version: int) -> Command:
        self._model(name)
        record = self._version(name, version)
        if record.status != VersionStatus.HELD:
            self._refuse(actor, "approve", name, version, {}, Conflict(f"version {version} is {record.status}, not held"))
        return self.command(actor, name, "approve", version)

    def reject(self, actor: str, name: str, version: int, reason: str = "") -> Command:
        self._model(name)
        record = self._version(name, version)
        if record.status not in (VersionStatus.HELD, VersionStatus.CANDIDATE, VersionStatus.VALIDATING):
            self._refuse(actor, "reject", name, version, {}, Conflict(f"version {version} is {record.status}; only held or candidate versions can be rejected"))
        return self.command(actor, name, "reject", version, **({"reason": reason} if reason else {}))

    def rollback(self, actor: str, name: str, version: int | None = None, reason: str = "") -> Command:
        model = self._model(name)
        params = {"reason": reason} if reason else {}
        target = version if version is not None else model.previous_version
        if target is None:
            self._refuse(actor, "rollback", name, None, params, Conflict("no previous version to roll back to"))
        if target == model.serving_version:
            self._refuse(actor, "rollback", name, target, params, Conflict(f"version {target} is serving already"))
        record = self._version(name, target)  # type: ignore[arg-type]
        if record.status in (VersionStatus.REJECTED, VersionStatus.CANDIDATE, VersionStatus.VALIDATING):
            self._refuse(actor, "rollback", name, target, params, Conflict(f"version {target} is {record.status}; roll back to a version that served"))
        return self.command(actor, name, "rollback", target, **params)

    def set_strategy(self, actor: str, name: str, strategy: str, hyperparameters: dict[str, Any]) -> Command:
        self._model(name)
        if not _STRATEGY.match(strategy or ""):
            raise InvalidRequest(f"not a strategy name: {strategy!r}")
        return self.command(actor, name, "set_strategy", None, strategy=strategy, hyperparameters=hyperparameters)

    def set_policy(self, actor: str, name: str, policy: dict[str, Any]) -> Command:
        self._model(name)
        if "promotion" in policy and policy["promotion"] not in PROMOTIONS:
            raise InvalidRequest(f"promotion is one of {PROMOTIONS}")
        return self.command(actor, name, "set_policy", None, policy=policy)

    def trigger_update(self, actor: str, name: str, strategy: str | None = None,
                       hyperparameters: dict[str, Any] | None = None) -> UpdateRequest:

        model = self._model(name)
        if model.serving_version is None:
            self._refuse(actor, "update", name, None, {}, Conflict("the model has no serving version to update from"))
        params = {"strategy": strategy, "hyperparameters": hyperparameters or {}}
        ranges = self.offsets.ranges(name, model.serving_version) if self.offsets is not None else []
        if not ranges:
            self._refuse(actor, "update", name, model.serving_version, params,
                         Conflict(f"no labeled samples of version {model.serving_version} have arrived yet"))
        request = UpdateRequest(model=name, base_version=model.serving_version, reason="manual", sample_ranges=ranges,
                                strategy=strategy, hyperparameters=_stringify(hyperparameters or {}), requested_by=actor)
        return self._send(topics.UPDATES, request, actor, "update", model=name, version=model.serving_version,  # type: ignore[return-value]
                          params=params)
