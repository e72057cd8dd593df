"""The model registry in Redis: models, their versions, statuses, reports and lineage.

Redis is the one place every service (trainer, deployer, console) reads the truth about a
model from. Each model is a hash plus a sorted set of its versions; each version is a hash whose
JSON fields carry metrics, the validation report and lineage (base version, sample offsets,
strategy, hyperparameters). Version numbers come from an atomic counter so two trainers can
never propose the same number.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from services.common.errors import ModelCIError
from services.common.tensors import InputSpec


WEIGHTS_URI = "weights_uri"
WEIGHTS_SHA256 = "weights_sha256"
"""Keys in a version's ``report`` of its ``state_dict`` artifact: where the next update starts
(written by registration and by the trainer, read by the trainer)."""


class RegistryError(ModelCIError):
    reason = "registry"
    http_status = 404


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    VALIDATING = "validating"
    HELD = "held"
    REJECTED = "rejected"
    SERVING = "serving"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


@dataclass
class ModelRecord:
    name: str
    input_shape: list[int]
    classes: list[str]
    strategy: str = "replay"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=lambda: {"promotion": "auto"})
    serving_version: int | None = None
    created_at_ms: int = 0
    previous_version: int | None = None
    """The version that served before ``serving_version``: kept loaded in Triton for rollback."""
    updated_at_ms: int = 0
    architecture: dict[str, Any] | None = None
    """How the trainer rebuilds the model (`strategies.architecture.Architecture.as_dict`):
    factory, its keyword arguments, and whether it returns logits or probabilities. None for
    models registered before it existed (the trainer rebuilds the built-in MLP)."""
    datatype: str = "FP32"
    """Triton datatype of the input (`services.common.tensors`); models registered before it
    existed take FP32."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(tuple(self.input_shape), self.datatype)


@dataclass
class VersionRecord:
    model: str
    version: int
    status: str = VersionStatus.CANDIDATE
    artifact_uri: str | None = None
    artifact_sha256: str | None = None
    base_version: int | None = None
    strategy: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    sample_ranges: list[dict[str, int]] = field(default_factory=list)
    samples_topic: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    update_id: str | None = None
    candidate_event_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    created_at_ms: int = 0
    updated_at_ms: int = 0


def _encode(record: Any) -> dict[str, str]:
    return {k: json.dumps(v) for k, v in asdict(record).items()}


def _decode(cls: type, raw: dict[bytes, bytes]) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k.decode(): json.loads(v) for k, v in raw.items()}
    return cls(**{k: v for k, v in values.items() if k in names})


class ModelRegistry:
    """Reads and writes models and versions under ``<prefix>registry:``."""

    def __init__(self, client, prefix: str = "modelci:") -> None:
        self.r = client
        self.p = f"{prefix}registry:"

    # keys
    def _model_key(self, name: str) -> str:
        return f"{self.p}model:{name}"

    def _versions_key(self, name: str) -> str:
        return f"{self.p}model:{name}:versions"

    def _version_key(self, name: str, version: int) -> str:
        return f"{self.p}model:{name}:version:{version}"

    def _counter_key(self, name: str) -> str:
        return f"{self.p}model:{name}:next_version"

    # models
    def put_model(self, model: ModelRecord) -> None:
        pipe = self.r.pipeline()
        pipe.hset(self._model_key(model.name), mapping=_encode(model))
        pipe.sadd(f"{self.p}models", model.name)
        pipe.execute()

    def get_model(self, name: str) -> ModelRecord | None:
        raw = self.r.hgetall(self._model_key(name))
        return _decode(ModelRecord, raw) if raw else None

    def require_model(self, name: str) -> ModelRecord:
        model = self.get_model(name)
        if model is None:
            raise RegistryError(f"unknown model {name!r}")
        return model

    def list_models(self) -> list[ModelRecord]:
        names = sorted(n.decode() for n in self.r.smembers(f"{self.p}models"))
        return [m for m in (self.get_model(n) for n in names) if m is not None]

    def update_model(self, name: str, **changes: Any) -> ModelRecord:
        self.require_model(name)
        self.r.hset(self._model_key(name), mapping={k: json.dumps(v) for k, v in changes.items()})
        return self.require_model(name)

    # versions
    def next_version(self, name: str) -> int:
        """Allocates the next version number atomically (never reused, even after a rejection)."""
        existing = self.r.zrevrange(self._versions_key(name), 0, 0, withscores=True)
        floor = int(existing[0][1]) if existing else 0
        # Keep the counter ahead of any version written directly (e.g. registration of version 1).
        self.r.eval(
            "if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end",
            1,
            self._counter_key(name),
            floor,
        )
        return int(self.r.incr(self._counter_key(name)))

    def put_version(self, record: VersionRecord) -> None:
        pipe = self.r.pipeline()
        pipe.hset(self._version_key(record.model, record.version), mapping=_encode(record))
        pipe.zadd(self._versions_key(record.model), {str(record.version): record.version})
        pipe.execute()

    def get_version(self, name: str, version: int) -> VersionRecord | None:
        raw = self.r.hgetall(self._version_key(name, version))
        return _decode(VersionRecord, raw) if raw else None

    def require_version(self, name: str, version: int) -> VersionRecord:
        record = self.get_version(name, version)
        if record is None:
            raise RegistryError(f"model {name!r} has no version {version}")
        return record

    def list_versions(self, name: str) -> list[VersionRecord]:
        numbers = [int(v) for v in self.r.zrange(self._versions_key(name), 0, -1)]
        return [v for v in (self.get_version(name, n) for n in numbers) if v is not None]

    def update_version(self, name: str, version: int, **changes: Any) -> VersionRecord:
        self.require_version(name, version)
        self.r.hset(self._version_key(name, version), mapping={k: json.dumps(v) for k, v in changes.items()})
        return self.require_version(name, version)

    def set_status(
        self, name: str, version: int, status: str, *, actor: str = "deployer", note: str = "", **changes: Any
    ) -> VersionRecord:
        """Changes a version's status and appends who/when/why to its history in one write.

        The history is what the console shows as the version's life and what an audit reads;
        every status change goes through here so none is ever unrecorded.
        """
        record = self.require_version(name, version)
        now = int(time.time() * 1000)
        entry = {"status": str(status), "from": str(record.status), "actor": actor, "at_ms": now}
        if note:
            entry["note"] = note
        history = [*record.history, entry]
        return self.update_version(name, version, status=str(status), history=history, updated_at_ms=now, **changes)

    def serving(self, name: str) -> VersionRecord | None:
        """The version the registry says is serving, if any."""
        model = self.get_model(name)
        if model is None or model.serving_version is None:
            return None
        return self.get_version(name, model.serving_version)

    def versions_with_status(self, name: str, *statuses: str) -> list[VersionRecord]:
        wanted = {str(s) for s in statuses}
        return [v for v in self.list_versions(name) if str(v.status) in wanted]
