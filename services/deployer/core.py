"""The deployer's decisions, knowing nothing of Kafka: candidates, commands, samples, restarts.

Every decision changes the registry (with history) and emits a `DeploymentEvent` through the
``emit`` callback; the adapter in ``app.py`` publishes those and commits offsets only after.
The ordering rule that keeps the registry honest: Triton is switched and confirmed first, the
registry says ``serving`` after, so a crash in between leaves a registry that under-claims,
which `reconcile` repairs from Triton's repository index on restart.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from services.common.artifacts import ArtifactStore
from services.common.errors import UnknownModel
from services.common.events import Candidate, Command, DeploymentEvent, LabeledSampleBatch, now_ms
from services.common.logs import model_var, version_var
from services.common.registry import ModelRegistry, VersionRecord, VersionStatus
from services.deployer.gate import Gate
from services.deployer.metrics import DeployerMetrics
from services.deployer.policy import Policy
from services.deployer.publisher import switch
from services.deployer.samples import SampleStore
from services.common.triton_errors import TritonLoadFailed
from services.deployer.triton_ops import TritonOps

S = VersionStatus
DECIDED = {S.SERVING, S.RETIRED, S.ROLLED_BACK, S.REJECTED, S.HELD}
_log = structlog.get_logger("deployer")


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


class Deployer:
    def __init__(
        self,
        registry: ModelRegistry,
        store: ArtifactStore,
        samples: SampleStore,
        triton: TritonOps,
        repository: Path,
        metrics: DeployerMetrics,
        emit: Callable[[DeploymentEvent], None],
        processed_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self.registry = registry
        self.store = store
        self.samples = samples
        self.triton = triton
        self.repository = Path(repository)
        self.metrics = metrics
        self.emit = emit
        self.gate = Gate(store, samples, triton, self.repository)
        self.ttl = processed_ttl_s
        self.r = registry.r
        self.p = registry.p.replace("registry:", "deployer:")

    # --- idempotency -------------------------------------------------------------------------
    def seen(self, event_id: str) -> bool:
        return bool(self.r.exists(f"{self.p}processed:{event_id}"))

    def done(self, event_id: str) -> None:
        self.r.set(f"{self.p}processed:{event_id}", 1, ex=self.ttl)

    def _event(self, model: str, version: int, action: str, **kw: Any) -> None:
        if "report" in kw and not isinstance(kw["report"], str):
            kw["report"] = json.dumps(clean(kw["report"]))
        self.emit(DeploymentEvent(model=model, version=version, action=action, **kw))

    # --- candidates ----------------------------------------------------------------------------
    def handle_candidate(self, cand: Candidate) -> None:
        if self.seen(cand.event_id):
            return
        model_var.set(cand.model)
        version_var.set(cand.version)
        self.metrics.candidates.labels(cand.model, cand.outcome).inc()
        model = self.registry.get_model(cand.model)
        if model is None:
            raise UnknownModel(f"candidate for unknown model {cand.model!r}")
        if cand.outcome != "succeeded" or cand.version is None:
            if cand.version is not None and self.registry.get_version(cand.model, cand.version) is not None:
                self.registry.set_status(cand.model, cand.version, S.REJECTED, note=f"training failed: {cand.reason}")
                self._event(cand.model, cand.version, "rejected", reasons=["training_failed"], candidate_event_id=cand.event_id,
                            report={"reason": cand.reason})
            self.done(cand.event_id)
            return
        record = self.registry.get_version(cand.model, cand.version)
        if record is None:  # the trainer writes it first; tolerate one that did not
            record = VersionRecord(
                model=cand.model, version=cand.version, artifact_uri=cand.artifact_uri, artifact_sha256=cand.artifact_sha256,
                base_version=cand.base_version, strategy=cand.strategy, hyperparameters=dict(cand.hyperparameters),
                sample_ranges=[r.to_record() for r in cand.sample_ranges], samples_topic=cand.samples_topic,
                metrics=dict(cand.metrics), update_id=cand.update_id, candidate_event_id=cand.event_id, created_at_ms=cand.created_at_ms,
            )
            self.registry.put_version(record)
        if record.status in DECIDED:
            self.done(cand.event_id)
            return
        self.registry.set_status(cand.model, cand.version, S.VALIDATING, candidate_event_id=cand.event_id)
        serving = self.registry.serving(cand.model)
        base = self.registry.get_version(cand.model, cand.base_version)
        _log.info("validating", candidate_age_s=round(max(0, now_ms() - cand.created_at_ms) / 1000, 3))
        result = self.gate.validate(cand, model, serving, base)
        _log.info("validated", passed=result.passed, gate_seconds=round(result.seconds, 3), check_seconds=result.extra.get("check_seconds"))
        report = clean({**result.report(), "serving_version": model.serving_version, "candidate_metrics": dict(cand.metrics)})
        if not result.passed:
            self.registry.set_status(cand.model, cand.version, S.REJECTED, note=",".join(result.reasons), report=report)
            for reason in result.reasons:
                self.metrics.rejected.labels(cand.model, reason).inc()
            self._event(cand.model, cand.version, "rejected", reasons=result.reasons, report=report,
                        previous_version=model.serving_version, candidate_event_id=cand.event_id)
            _log.info("candidate rejected", reasons=result.reasons,
                      failed={c.name: c.values for c in result.checks if not c.passed})
            self.done(cand.event_id)
            return
        accepted = time.perf_counter()  # switch time counts from the gate's acceptance
        self.metrics.validated.labels(cand.model).inc()
        self.registry.update_version(cand.model, cand.version, report=report)
        self._event(cand.model, cand.version, "validated", report=report, previous_version=model.serving_version,
                    candidate_event_id=cand.event_id)
        if Policy.from_dict(model.policy).promotion == "manual":
            self.registry.set_status(cand.model, cand.version, S.HELD, note="awaiting approval")
            self._event(cand.model, cand.version, "held", report=report, previous_version=model.serving_version,
                        candidate_event_id=cand.event_id)
            self.done(cand.event_id)
            return
        self.deploy(cand.model, cand.version, actor="deployer", artifact=result.artifact, probe=result.probe,
                    candidate_event_id=cand.event_id, accepted_at=accepted)
        self.done(cand.event_id)

    def deploy(self, name: str, version: int, *, actor: str, artifact: bytes | None = None, probe: np.ndarray | None = None,
               candidate_event_id: str | None = None, accepted_at: float | None = None) -> bool:
        """Publishes ``version`` next to the serving one and switches unpinned traffic to it.

        Raises TritonUnavailable when Triton cannot be reached (the caller retries later; the
        version stays unconfirmed and the registry keeps the old serving version).
        """
        accepted_at = accepted_at or time.perf_counter()
        model = self.registry.require_model(name)
        record = self.registry.require_version(name, version)
        data = artifact if artifact is not None else self.store.get(record.artifact_uri, record.artifact_sha256)
        if probe is None:
            probe = model.input_spec.synthetic(4)
        previous = model.serving_version
        try:
            load_s = switch(self.triton, self.repository, model, [version], version, {version: data}, probe[:4])
        except TritonLoadFailed as exc:
            if previous is not None:  # put back exactly what served before
                switch(self.triton, self.repository, model, [previous], previous, self._artifacts(name, [previous]), probe[:4])
            self.registry.set_status(name, version, S.REJECTED, note=f"triton: {exc}")
            self.metrics.rejected.labels(name, "triton_load_failed").inc()
            self._event(name, version, "rejected", reasons=["triton_load_failed"], report={"detail": str(exc)[:500]},
                        previous_version=previous, candidate_event_id=candidate_event_id, actor=actor)
            return False
        self.metrics.load_seconds.labels(name).observe(load_s)
        self.registry.set_status(name, version, S.SERVING, actor=actor, note=f"previous {previous}")
        if previous is not None and previous != version:
            self.registry.set_status(name, previous, S.RETIRED, actor=actor, note=f"superseded by v{version}; rollback target")
        self.registry.update_model(name, serving_version=version, previous_version=previous if previous != version else None,
                                   updated_at_ms=int(time.time() * 1000))
        self.r.hset(f"{self.p}watch:{name}", mapping={"version": version, "previous": previous if previous is not None else -1,
                                                        "started_ms": int(time.time() * 1000)})
        switch_s = time.perf_counter() - accepted_at
        self.metrics.switch_seconds.labels(name).observe(switch_s)
        self.metrics.deployments.labels(name).inc()
        self.metrics.serving_version.labels(name).set(version)
        self._event(name, version, "deployed", previous_version=previous, actor=actor, candidate_event_id=candidate_event_id,
                    report={"load_s": load_s, "switch_s": switch_s})
        _log.info("deployed", model=name, version=version, previous=previous, load_s=round(load_s, 3))
        return True

    def _artifacts(self, name: str, versions: list[int]) -> dict[int, bytes]:
        """Artifacts of ``versions`` whose folders are gone from the repository (to re-stage them)."""
        out = {}
        for v in versions:
            if not (self.repository / name / str(v) / "model.pt").exists():
                rec = self.registry.require_version(name, v)
                out[v] = self.store.get(rec.artifact_uri, rec.artifact_sha256)
        return out

    # --- the serving-version gauge ---------------------------------------------------------------
    def export_serving_versions(self) -> int:
        """Sets ``modelci_deployer_serving_version`` of every registered model from the registry.

        Registration (``modelci model register``) runs in its own short-lived process, which has no
        /metrics to export the gauge from, so without this a model registered while the deployer
        runs has no serving-version series until its first deployment. Following the registry also
        brings every deployer replica's gauge in line with the one that switched. A model that
        serves nothing (reconciliation found no servable version) loses its series. Returns how
        many models have one.
        """
        exported = 0
        for model in self.registry.list_models():
            if model.serving_version is None:
                try:
                    self.metrics.serving_version.remove(model.name)
                except KeyError:  # never had one
                    pass
                continue
            self.metrics.serving_version.labels(model.name).set(model.serving_version)
            exported += 1
        return exported

    # --- rollback --------------------------------------------------------------------------------
    def rollback(self, name: str, target: int | None, *, actor: str, trigger: str, evidence: dict[str, Any]) -> bool:
        model = self.registry.require_model(name)
        current = model.serving_version
        if target is None:
            target = model.previous_version
        if target is None and current is not None:  # after a rollback: the newest older version that served
            older = [v.version for v in self.registry.versions_with_status(name, S.RETIRED) if v.version < current]
            target = max(older) if older else None
        if target is None or current is None or target == current:
            _log.warning("nothing to roll back to", model=name, current=current, target=target)
            return False
        self.registry.require_version(name, target)
        probe = model.input_spec.synthetic(4)
        load_s = switch(self.triton, self.repository, model, [target], target, self._artifacts(name, [target]), probe)
        self.metrics.load_seconds.labels(name).observe(load_s)
        evidence = clean({**evidence, "trigger": trigger, "rolled_back_version": current, "restored_version": target, "load_s": load_s})
        self.registry.set_status(name, target, S.SERVING, actor=actor, note=f"rollback from v{current}")
        self.registry.set_status(name, current, S.ROLLED_BACK, actor=actor, note=trigger,
                                 report={**self.registry.require_version(name, current).report, "rollback": evidence})
        self.registry.update_model(name, serving_version=target, previous_version=None, updated_at_ms=int(time.time() * 1000))
        self.r.delete(f"{self.p}watch:{name}")
        self.metrics.rollbacks.labels(name, trigger).inc()
        self.metrics.serving_version.labels(name).set(target)
        self._event(name, target, "rolled_back", previous_version=current, actor=actor, reasons=[trigger], report=evidence)
        _log.info("rolled back", model=name, restored=target, rolled_back=current, trigger=trigger)
        return True

    # --- commands --------------------------------------------------------------------------------
    def handle_command(self, cmd: Command) -> None:
        if self.seen(cmd.event_id):
            return
        model_var.set(cmd.model)
        if self.registry.get_model(cmd.model) is None:
            raise UnknownModel(f"command for unknown model {cmd.model!r}")
        if cmd.action == "approve" and cmd.version is not None:
            record = self.registry.get_version(cmd.model, cmd.version)
            if record is not None and record.status == S.HELD:
                self.deploy(cmd.model, cmd.version, actor=cmd.actor, candidate_event_id=record.candidate_event_id)
        elif cmd.action == "reject" and cmd.version is not None:
            record = self.registry.get_version(cmd.model, cmd.version)
            if record is not None and record.status in (S.HELD, S.CANDIDATE):
                note = f"rejected by operator: {cmd.params.get('reason', '')}".rstrip(": ")
                self.registry.set_status(cmd.model, cmd.version, S.REJECTED, actor=cmd.actor, note=note)
                self.metrics.rejected.labels(cmd.model, "operator").inc()
                self._event(cmd.model, cmd.version, "rejected", reasons=["rejected_by_operator"], actor=cmd.actor,
                            candidate_event_id=record.candidate_event_id)
        elif cmd.action == "rollback":
            self.rollback(cmd.model, cmd.version, actor=cmd.actor, trigger="manual", evidence={"params": dict(cmd.params)})
        elif cmd.action == "set_policy":  # params are a string map; non-strings travel as JSON
            raw = json.loads(cmd.params.get("policy", "{}"))
            policy = Policy.from_dict({**self.registry.require_model(cmd.model).policy, **raw})
            self.registry.update_model(cmd.model, policy=policy.as_dict())
        elif cmd.action == "set_strategy" and cmd.params.get("strategy"):
            changes: dict[str, Any] = {"strategy": cmd.params["strategy"]}
            if "hyperparameters" in cmd.params:
                changes["hyperparameters"] = json.loads(cmd.params["hyperparameters"])
            self.registry.update_model(cmd.model, **changes)
        self.done(cmd.event_id)

    # --- samples and the post-deploy watch -------------------------------------------------------
    def handle_samples(self, batch: LabeledSampleBatch, partition: int, offset: int) -> None:
        """Idempotent by offset, not event id: one high-water mark per partition stays bounded
        where an id per sample batch would not."""
        mark = f"{self.p}samples_hw:{partition}"
        seen = self.r.get(mark)
        if seen is not None and offset <= int(seen):
            return
        self.samples.add(batch, partition, offset)
        self.watch(batch.model)
        self.r.set(mark, offset)

    def watch(self, name: str) -> None:
        state = self.r.hgetall(f"{self.p}watch:{name}")
        model = self.registry.get_model(name)
        if not state or model is None:
            return
        version, previous = int(state[b"version"]), int(state[b"previous"])
        if model.serving_version != version or previous < 0:
            self.r.delete(f"{self.p}watch:{name}")
            return
        policy = Policy.from_dict(model.policy)
        new = self.samples.live_outcomes(name, version, policy.watch_window)
        if len(new) < policy.watch_min_samples:
            return
        old = self.samples.live_outcomes(name, previous, policy.watch_window)
        acc_new = sum(new) / len(new)
        acc_old = sum(old) / len(old) if len(old) >= policy.watch_min_samples else None
        evidence = {"live_accuracy_new": acc_new, "live_accuracy_previous": acc_old, "samples_new": len(new),
                    "samples_previous": len(old), "tolerance": policy.watch_tolerance}
        if acc_old is not None and acc_new < acc_old - policy.watch_tolerance:
            self.rollback(name, previous, actor="deployer", trigger="watch_regression", evidence=evidence)
        elif len(new) >= policy.watch_window:
            record = self.registry.require_version(name, version)
            self.registry.update_version(name, version, report={**record.report, "watch": clean({**evidence, "passed": True})})
            self.r.delete(f"{self.p}watch:{name}")
