"""The trainer's core: one update request in, one Candidate out. Knows nothing of the consumer loop.

Order of work, cheapest checks first so a bad request fails before anything heavy runs: model and
base version in the registry, strategy and hyperparameters, base weights, then the samples, then
training. Every failure that retrying cannot fix becomes a failed Candidate with its reason;
a dependency that is down (`TransientError`) propagates so the loop retries the request.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import structlog
import torch

from services.common.artifacts import ArtifactStore
from services.common.errors import ModelCIError, TransientError
from services.common.events import Candidate, UpdateRequest, now_ms
from services.common.logs import model_var, version_var
from services.common.registry import ModelRecord, ModelRegistry, VersionRecord, VersionStatus
from services.trainer import errors
from services.trainer.control import Admission, controlled_fit
from services.trainer.lock import LockTimeout, ModelLock
from services.trainer.metrics import TrainerMetrics
from services.trainer.samples import SampleReader
from services.trainer.settings import TrainerSettings
from services.trainer.state import StrategyStateStore
from services.trainer.weights import WEIGHTS_SHA256, WEIGHTS_URI, fit, hidden_width, raw_state

_log = structlog.get_logger("modelci.trainer")


def code_version() -> str:
    """``modelci-e <version>`` plus ``+g<commit>`` when running from a git checkout."""
    try:
        version = metadata.version("modelci-e")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"modelci-e {version}" + (f"+g{commit}" if commit else "")


def choose_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device("cpu")


def parse_overrides(values: dict[str, str]) -> dict:
    """Hyperparameter overrides arrive as JSON text per key (the Avro map is string-valued)."""
    out = {}
    for key, text in values.items():
        try:
            out[key] = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise errors.UpdateFailed(errors.INVALID_HYPERPARAMETERS, f"{key}: not JSON text: {text!r}") from exc
    return out


@dataclass
class Trainer:
    settings: TrainerSettings
    registry: ModelRegistry
    store: ArtifactStore
    states: StrategyStateStore
    reader: SampleReader
    redis: object
    metrics: TrainerMetrics
    device: torch.device
    load: object | None = None  # control.TritonLoad, or None when not watching serving
    code: str = ""

    def __post_init__(self) -> None:
        self.code = self.code or code_version()

    def lock_key(self, model: str) -> str:
        return f"{self.settings.redis.key_prefix}trainer:lock:{model}"

    # -- one request ---------------------------------------------------------------------
    def process(self, req: UpdateRequest, stop: Callable[[], bool] = lambda: False) -> Candidate:
        """Runs one update under the model's lock; returns a succeeded or failed Candidate."""
        model_var.set(req.model)
        version_var.set(req.base_version)
        self.metrics.updates_started.labels(req.model).inc()
        start = time.monotonic()
        lock = ModelLock(self.redis, self.lock_key(req.model), self.settings.lock_ttl_ms)
        try:
            lock.acquire(self.settings.lock_wait_s, stop)
        except LockTimeout as exc:
            raise (errors.Interrupted(str(exc)) if stop() else TransientError(str(exc))) from exc
        if lock.contended:  # not a time threshold: a slow first SET under load is no wait for another trainer
            self.metrics.lock_waits.labels(req.model).inc()
            self.metrics.lock_wait_seconds.labels(req.model).inc(lock.waited_s)
            _log.info("lock_waited", seconds=round(lock.waited_s, 3))
        acquired_ms = now_ms()
        try:
            candidate = self._update(req, lock.waited_s, acquired_ms, stop)
        except errors.UpdateFailed as exc:
            candidate = self._failed(req, exc.reason, exc.detail)
        except TransientError:
            raise
        except ModelCIError as exc:  # the strategy's own errors carry their reason
            candidate = self._failed(req, exc.reason, str(exc))
        except Exception as exc:  # a poison request must not loop forever: fail it, loudly
            _log.exception("update_crashed")
            candidate = self._failed(req, errors.INTERNAL, f"{type(exc).__name__}: {exc}")
        finally:
            lock.release()
        elapsed = time.monotonic() - start
        candidate.train_seconds = round(elapsed, 3)
        self.metrics.duration.labels(req.model).observe(elapsed)
        return candidate

    def _failed(self, req: UpdateRequest, reason: str, detail: str) -> Candidate:
        self.metrics.updates_failed.labels(req.model, reason).inc()
        _log.warning("update_failed", reason=reason, detail=detail, update_id=req.event_id)
        return Candidate(
            update_id=req.event_id,
            model=req.model,
            outcome="failed",
            reason=reason,
            base_version=req.base_version,
            strategy=req.strategy or self._configured_strategy(req.model),
            code_version=self.code,
            sample_ranges=list(req.sample_ranges),
            hyperparameters=dict(req.hyperparameters),
            samples_topic=req.samples_topic,
            device=str(self.device),
        )

    def _configured_strategy(self, model: str) -> str:
        try:
            record = self.registry.get_model(model)
        except Exception:  # Redis trouble must not hide the original failure
            return ""
        return record.strategy if record is not None else ""

    def _strategy(self, record: ModelRecord, req: UpdateRequest):
        from strategies.registry import get_strategy

        name = req.strategy or record.strategy
        cls = get_strategy(name)  # UnknownStrategy -> failed, reason unknown_strategy
        # The model's stored hyperparameters belong to its own strategy; an override starts clean.
        hp = dict(record.hyperparameters) if name == record.strategy else {}
        hp.update(parse_overrides(req.hyperparameters))
        cls.validate_hyperparameters(hp)  # InvalidHyperparameters before anything heavy
        return name, cls, hp

    def _architecture(self, record: ModelRecord, raw: dict[str, torch.Tensor]):
        """The registered architecture; for a model registered before architectures were
        recorded, the built-in MLP at the base weights' width."""
        from strategies.architecture import BUILTIN_MLP, Architecture, ArchitectureError

        if record.architecture:
            try:
                return Architecture.from_dict(record.architecture)
            except (KeyError, TypeError, ArchitectureError) as exc:
                raise errors.UpdateFailed(errors.ARTIFACT_INVALID, f"the registered architecture is unusable: {exc}") from exc
        hidden = hidden_width(raw) or self.settings.hidden
        return Architecture(BUILTIN_MLP, {"input_dim": int(np.prod(record.input_shape)), "num_classes": record.num_classes, "hidden": hidden})

    def _update(self, req: UpdateRequest, waited_s: float, acquired_ms: int, stop: Callable[[], bool]) -> Candidate:
        from services.trainer.training import TrainingJob, train_candidate

        record = self.registry.get_model(req.model)
        if record is None:
            raise errors.UpdateFailed(errors.UNKNOWN_MODEL, f"model {req.model!r} is not registered")
        base = self.registry.get_version(req.model, req.base_version)
        if base is None:
            raise errors.UpdateFailed(errors.UNKNOWN_BASE_VERSION, f"{req.model!r} has no version {req.base_version}")
        name, cls, hp = self._strategy(record, req)
        spec = record.input_spec
        _log.info("update_started", update_id=req.event_id, strategy=name, reason=req.reason, base=req.base_version,
                  input=f"{spec.datatype}{list(spec.shape)}", ranges=len(req.sample_ranges))

        raw = raw_state(self.store, base)
        arch = self._architecture(record, raw)
        fit(arch.build(), raw)  # an unusable architecture or base weights that do not fit fail before the samples are read
        restored = self.states.load(req.model, name)

        read_started = time.monotonic()
        samples = self.reader.read(req.samples_topic, list(req.sample_ranges), req.model, spec, record.num_classes)
        read_seconds = time.monotonic() - read_started
        for why, n in samples.skipped.items():
            self.metrics.samples_skipped.labels(req.model, why).inc(n)

        admission = Admission(self.settings.control, self.load, on_pause=self.metrics.paused_seconds.inc, stop=stop)
        controlled = controlled_fit(self.settings.control, admission, self.device)
        job = TrainingJob(arch, spec, cls, hp, samples, base_weights=raw, state=restored[0] if restored else None,
                          holdout_fraction=float(record.policy.get("holdout_fraction", self.settings.holdout_fraction)), seed=self.settings.seed, device=self.device)
        result = train_candidate(job, controlled)
        finished_ms = now_ms()
        restored_from = restored[1] if restored is not None and result.state_restored else None

        put_started = time.monotonic()
        uri, sha = self.store.put(result.artifact, suffix=".pt")
        weights_uri, weights_sha = self.store.put(result.weights, suffix=".weights.pt")
        metrics: dict[str, float] = {
            "read_seconds": round(read_seconds, 3),
            **result.metrics,
            "export_seconds": round(result.metrics["export_seconds"] + time.monotonic() - put_started, 3),
            "samples_skipped": float(sum(samples.skipped.values())),
            "paused_seconds": round(admission.paused_s, 3),
            "lock_wait_seconds": round(waited_s, 3),
        }
        for key in ("accuracy_new_holdout", "base_accuracy_new_holdout", "accuracy_memory", "base_accuracy_memory"):
            if key in metrics:
                self.metrics.accuracy.labels(req.model, key).set(metrics[key])

        version = self.registry.next_version(req.model)
        version_var.set(version)
        hp_text = {k: json.dumps(v) for k, v in hp.items()}
        ranges = [r.to_record() for r in req.sample_ranges]
        self.registry.put_version(
            VersionRecord(
                model=req.model,
                version=version,
                status=VersionStatus.CANDIDATE,
                artifact_uri=uri,
                artifact_sha256=sha,
                base_version=req.base_version,
                strategy=name,
                hyperparameters=hp,
                sample_ranges=ranges,
                samples_topic=req.samples_topic,
                metrics=metrics,
                report={
                    WEIGHTS_URI: weights_uri,
                    WEIGHTS_SHA256: weights_sha,
                    "code_version": self.code,
                    "device": str(self.device),
                    "lock_acquired_at_ms": acquired_ms,
                    "trained_at_ms": finished_ms,
                    "strategy_state_from_version": restored_from,
                    "skipped": dict(samples.skipped),
                },
                update_id=req.event_id,
                created_at_ms=now_ms(),
                updated_at_ms=now_ms(),
            )
        )
        self.states.save(req.model, name, result.state, version)
        self.metrics.updates_finished.labels(req.model).inc()
        self.metrics.samples_used.labels(req.model).inc(len(samples))
        _log.info("candidate_trained", candidate=version, samples=len(samples), skipped=dict(samples.skipped), **{k: round(v, 4) for k, v in metrics.items()})
        return Candidate(
            update_id=req.event_id,
            model=req.model,
            outcome="succeeded",
            version=version,
            base_version=req.base_version,
            artifact_uri=uri,
            artifact_sha256=sha,
            strategy=name,
            hyperparameters=hp_text,
            samples_topic=req.samples_topic,
            sample_ranges=list(req.sample_ranges),
            samples_used=len(samples),
            metrics=metrics,
            code_version=self.code,
            device=str(self.device),
        )
