"""The validation gate: every check configurable per model, every result in the report.

Order matters only for cost: the artifact and TorchScript checks come first (nothing else can
run without them), then accuracy on the CPU (cheap), then the Triton latency probe on a staging
model (a second Triton model, so the candidate never answers live traffic before it passes).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.common.artifacts import ArtifactStore
from services.common.events import Candidate
from services.common.registry import ModelRecord, VersionRecord
from services.common.tensors import InputSpec
from services.common.triton_repo import write_configs, write_version
from services.deployer import checks
from services.deployer.checks import Check, CandidateInvalid
from services.deployer.policy import Policy
from services.deployer.publisher import POLICY, spec_of
from services.deployer.samples import SampleSet, SampleStore
from services.common.triton_errors import TritonLoadFailed, TritonUnavailable
from services.deployer.triton_ops import TritonOps

STAGING_SUFFIX = "__staging"


@dataclass
class GateResult:
    passed: bool
    checks: list[Check]
    artifact: bytes | None = None
    probe: np.ndarray | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.checks if not c.passed and c.reason]

    def report(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "checks": [c.as_dict() for c in self.checks],
            "gate_seconds": round(self.seconds, 3),
            **self.extra,
        }


def compare_paired(name: str, reason: str, cand_right: np.ndarray, serv_right: np.ndarray | None, offset: float, z: float,
                   source: str) -> Check:
    """Candidate against serving on the same samples: it must reach serving's accuracy plus
    ``offset`` (a margin, or minus a tolerance) unless it misses by less than ``z`` standard
    errors of the paired difference. Both models score the same inputs, so the per-sample
    difference carries the noise; without the allowance an equally good candidate fails about
    half the time on a small set (one answer in a hundred decides)."""
    n = len(cand_right)
    cand = float(np.mean(cand_right)) if n else float("nan")
    if serv_right is None:
        return Check(name, True, values={"candidate": cand, "serving": float("nan"), "samples": n, "source": source})
    serv = float(np.mean(serv_right))
    diff = np.asarray(cand_right, dtype=np.float64) - np.asarray(serv_right, dtype=np.float64)
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    bound = serv + offset
    passed = bool(cand + z * se >= bound)
    values = {"candidate": cand, "serving": serv, "required": bound, "standard_error": se, "z": z, "samples": n, "source": source}
    return Check(name, passed, None if passed else reason, values=values)


def held_out_fraction(cand: Candidate, policy: Policy) -> float:
    """The share of inputs, by content, that the candidate's trainer held back (its metrics say;
    an older trainer's candidate: the policy's): the gate scores only those as unseen."""
    value = cand.metrics.get("holdout_fraction")
    return float(value) if value is not None else policy.holdout_fraction


class Gate:
    def __init__(self, store: ArtifactStore, samples: SampleStore, triton: TritonOps, repository: Path) -> None:
        self.store = store
        self.samples = samples
        self.triton = triton
        self.repository = Path(repository)
        self._modules: dict[str, torch.jit.ScriptModule] = {}

    def serving_module(self, version: VersionRecord | None) -> torch.jit.ScriptModule | None:
        if version is None or not version.artifact_uri:
            return None
        key = version.artifact_sha256 or version.artifact_uri
        if key not in self._modules:
            data = self.store.get(version.artifact_uri, version.artifact_sha256)
            self._modules[key] = checks.load_torchscript(data)[0]
        return self._modules[key]

    def validate(
        self, cand: Candidate, model: ModelRecord, serving: VersionRecord | None, base: VersionRecord | None
    ) -> GateResult:
        policy = Policy.from_dict(model.policy)
        started = time.perf_counter()
        done: list[Check] = []
        result = GateResult(False, done)
        timings: dict[str, float] = {}
        result.extra["check_seconds"] = timings
        mark = [started]

        def add(check: Check) -> None:
            """Keeps the check and what it cost (reading its samples included), for the report."""
            now = time.perf_counter()
            timings[check.name] = round(timings.get(check.name, 0.0) + now - mark[0], 4)
            mark[0] = now
            done.append(check)

        try:
            data, check = checks.fetch_artifact(self.store, cand.artifact_uri, cand.artifact_sha256)
            add(check)
            result.artifact = data
            module, check = checks.load_torchscript(data)
            add(check)
            spec = model.input_spec
            add(checks.check_shapes(module, spec, model.num_classes))
            old = self.serving_module(serving)
            ranges = [r.to_record() for r in cand.sample_ranges]
            held_out = held_out_fraction(cand, policy)
            fresh = self.samples.fresh(model.name, ranges, held_out, policy.min_fresh_samples, policy.validation_samples)
            probe = fresh.inputs(spec) if len(fresh) else spec.synthetic(32)
            result.probe = probe[:32]
            add(checks.check_outputs(module, probe))
            if policy.check_accuracy:
                add(self._accuracy(module, old, fresh, policy, spec))
            if policy.check_forgetting:
                add(self._forgetting(module, old, cand, base, model.name, policy, spec, held_out))
            if policy.canary == "shadow":
                add(self._shadow(module, model.name, policy, spec))
            if all(c.passed for c in done) and policy.check_latency:
                add(self._latency(model, cand, data, serving, result.probe, policy))
        except CandidateInvalid as exc:
            add(exc.check)
        result.passed = bool(done) and all(c.passed for c in done)
        result.seconds = time.perf_counter() - started
        return result

    def _accuracy(self, module, old, fresh: SampleSet, policy: Policy, spec: InputSpec) -> Check:
        if len(fresh) == 0:
            return Check("accuracy_fresh", True, skipped=True, values={"samples": 0, "source": fresh.source})
        x = fresh.inputs(spec)
        serv = checks.correct(old, x, fresh.labels) if old is not None else None
        return compare_paired("accuracy_fresh", "accuracy_regression", checks.correct(module, x, fresh.labels), serv,
                              policy.accuracy_margin, policy.confidence_z, fresh.source)

    def _forgetting(self, module, old, cand: Candidate, base: VersionRecord | None, model: str, policy: Policy, spec: InputSpec,
                    held_out: float) -> Check:
        ranges = (base.sample_ranges if base is not None and base.sample_ranges else None) or [
            r.to_record() for r in cand.sample_ranges
        ]
        cutoffs: dict[int, int] = {}
        for r in ranges:
            cutoffs[r["partition"]] = min(cutoffs.get(r["partition"], r["start"]), r["start"])
        replay = self.samples.older(model, cutoffs, held_out, policy.validation_samples)
        if len(replay) < policy.min_replay_samples:
            return Check("forgetting", True, skipped=True, values={"samples": len(replay), "required_samples": policy.min_replay_samples})
        x = replay.inputs(spec)
        serv = checks.correct(old, x, replay.labels) if old is not None else None
        return compare_paired("forgetting", "forgetting", checks.correct(module, x, replay.labels), serv,
                              -policy.forgetting_tolerance, policy.confidence_z, replay.source)

    def _shadow(self, module, model: str, policy: Policy, spec: InputSpec) -> Check:
        """Shadow canary: the candidate scores the latest live samples beside what was served."""
        live = self.samples.latest(model, policy.shadow_samples)
        if len(live) == 0:
            return Check("shadow", True, skipped=True, values={"samples": 0})
        preds = checks.run(module, live.inputs(spec)).argmax(axis=1)
        check = compare_paired("shadow", "shadow_regression", preds == live.labels, live.predicted == live.labels,
                               -policy.shadow_tolerance, policy.confidence_z, live.source)
        check.values["agreement_with_served"] = float((preds == live.predicted).mean())
        return check

    def _latency(self, model: ModelRecord, cand: Candidate, data: bytes, serving: VersionRecord | None, probe, policy: Policy) -> Check:
        """Loads the candidate as a separate staging model and compares p99 with the serving version."""
        staging = f"{model.name}{STAGING_SUFFIX}"
        folder = self.repository / staging
        shutil.rmtree(folder, ignore_errors=True)
        spec = spec_of(model)
        write_configs(self.repository, dataclasses.replace(spec, name=staging), POLICY)
        write_version(self.repository, staging, 1, data)
        probes: list[dict[str, float]] = []
        try:
            load_s = self.triton.load(staging)
            # A failing verdict is measured once more before it rejects: one probe's p99 is its
            # second-slowest request, and one scheduler stall on a busy machine can put it over
            # the bound; a model that is really slower fails both probes.
            for _ in range(2):
                probes.append(self._probe_latency(staging, model.name, serving, probe, policy))
                if probes[-1]["candidate_p99_ms"] <= probes[-1]["bound_ms"]:
                    break
        except TritonLoadFailed as exc:
            return Check("latency", False, "triton_load_failed", values={"detail": str(exc)[:300]})
        except TritonUnavailable:
            raise
        except Exception as exc:  # an inference error on the staging model
            return Check("latency", False, "triton_infer_failed", values={"detail": f"{type(exc).__name__}: {str(exc)[:300]}"})
        finally:
            try:
                self.triton.unload(staging)
            except Exception:
                pass
            shutil.rmtree(folder, ignore_errors=True)
        last = probes[-1]
        passed = bool(last["candidate_p99_ms"] <= last["bound_ms"])
        values = {**last, "load_s": load_s, "requests": policy.probe_requests, "probes": probes}
        return Check("latency", passed, None if passed else "latency", values=values)

    def _probe_latency(self, staging: str, name: str, serving: VersionRecord | None, probe, policy: Policy) -> dict[str, float]:
        """One probe: the candidate's and the serving version's p99, requests alternating."""
        if serving is None:
            cand_p99 = self.triton.p99_ms(staging, 1, probe, policy.probe_requests)
            return {"candidate_p99_ms": cand_p99, "serving_p99_ms": float("nan"), "bound_ms": float("inf")}
        cand_p99, serv_p99 = self.triton.p99_pair_ms((staging, 1), (name, serving.version), probe, policy.probe_requests)
        bound = max(serv_p99 * policy.latency_ratio, serv_p99 + policy.latency_slack_ms)
        return {"candidate_p99_ms": cand_p99, "serving_p99_ms": serv_p99, "bound_ms": bound}
