"""Typed envelopes for every event, next to their Avro schemas in ``schemas/``.

Each class names its schema (``SCHEMA``) and converts to and from the plain dicts fastavro
reads and writes. Hot paths (the drift service's per-event loop) may work on the dicts
directly; everything else passes these classes around.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

E = TypeVar("E", bound="Event")


def new_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Record:
    """A nested record: converts itself and the nested records it declares in ``NESTED``."""

    NESTED: ClassVar[dict[str, type["Record"]]] = {}

    def to_record(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.NESTED:
                value = [item.to_record() for item in value]
            out[f.name] = value
        return out

    @classmethod
    def from_record(cls: type[E], record: dict[str, Any]) -> E:
        kwargs = {}
        for f in fields(cls):
            if f.name not in record:
                continue
            value = record[f.name]
            nested = cls.NESTED.get(f.name)
            if nested is not None:
                value = [nested.from_record(item) for item in value]
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(slots=True)
class Event(Record):
    """A top-level event: one Kafka record, encoded with schema ``SCHEMA``."""

    SCHEMA: ClassVar[str] = ""


@dataclass(slots=True)
class OffsetRange(Record):
    partition: int
    start: int
    end: int


@dataclass(slots=True)
class InferenceRequest(Event):
    SCHEMA: ClassVar[str] = "InferenceRequest"
    request_id: str
    model: str
    features: list[float]
    shape: list[int]
    version: int | None = None
    datatype: str = "FP32"
    int_features: list[int] = field(default_factory=list)
    """The input of an integer model (INT64/INT32 token ids); ``features`` is empty then."""
    sent_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Prediction(Record):
    request_id: str
    features: list[float]
    scores: list[float]
    label: int
    confidence: float
    latency_ms: float
    requested_at_ms: int
    int_features: list[int] = field(default_factory=list)


@dataclass(slots=True)
class PredictionBatch(Event):
    SCHEMA: ClassVar[str] = "PredictionBatch"
    NESTED: ClassVar[dict[str, type[Record]]] = {"items": Prediction}
    model: str
    version: int
    items: list[Prediction]
    produced_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Feedback(Record):
    request_id: str
    label: int
    observed_at_ms: int = field(default_factory=now_ms)


@dataclass(slots=True)
class FeedbackBatch(Event):
    SCHEMA: ClassVar[str] = "FeedbackBatch"
    NESTED: ClassVar[dict[str, type[Record]]] = {"items": Feedback}
    model: str
    items: list[Feedback]
    sent_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class LabeledSample(Record):
    sample_id: str
    model_version: int
    features: list[float]
    label: int
    predicted: int
    confidence: float
    prediction_partition: int
    prediction_offset: int
    feedback_partition: int
    feedback_offset: int
    int_features: list[int] = field(default_factory=list)


@dataclass(slots=True)
class LabeledSampleBatch(Event):
    SCHEMA: ClassVar[str] = "LabeledSampleBatch"
    NESTED: ClassVar[dict[str, type[Record]]] = {"items": LabeledSample}
    model: str
    items: list[LabeledSample]
    joined_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class DriftEvent(Event):
    SCHEMA: ClassVar[str] = "DriftEvent"
    model: str
    version: int
    detector: str
    signal: str
    statistics: dict[str, float]
    topic: str
    partition: int
    offset: int
    observations: int
    detected_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class UpdateRequest(Event):
    SCHEMA: ClassVar[str] = "UpdateRequest"
    NESTED: ClassVar[dict[str, type[Record]]] = {"sample_ranges": OffsetRange}
    model: str
    base_version: int
    reason: str
    sample_ranges: list[OffsetRange]
    drift_event_id: str | None = None
    samples_topic: str = "cl.samples"
    strategy: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    requested_by: str = "drift"
    requested_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Candidate(Event):
    SCHEMA: ClassVar[str] = "Candidate"
    NESTED: ClassVar[dict[str, type[Record]]] = {"sample_ranges": OffsetRange}
    update_id: str
    model: str
    outcome: str
    base_version: int
    strategy: str
    code_version: str
    sample_ranges: list[OffsetRange] = field(default_factory=list)
    reason: str | None = None
    version: int | None = None
    artifact_uri: str | None = None
    artifact_sha256: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    samples_topic: str = "cl.samples"
    samples_used: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    train_seconds: float = 0.0
    created_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class DeploymentEvent(Event):
    SCHEMA: ClassVar[str] = "DeploymentEvent"
    model: str
    version: int
    action: str
    previous_version: int | None = None
    reasons: list[str] = field(default_factory=list)
    report: str = "{}"
    actor: str = "deployer"
    candidate_event_id: str | None = None
    decided_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class DeadLetter(Event):
    SCHEMA: ClassVar[str] = "DeadLetter"
    service: str
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    key: bytes | None = None
    value: bytes | None = None
    request_id: str | None = None
    failed_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class Command(Event):
    SCHEMA: ClassVar[str] = "Command"
    model: str
    action: str
    actor: str
    version: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    issued_at_ms: int = field(default_factory=now_ms)
    event_id: str = field(default_factory=new_id)


EVENT_CLASSES: dict[str, type[Event]] = {
    cls.SCHEMA: cls
    for cls in (
        InferenceRequest,
        PredictionBatch,
        FeedbackBatch,
        LabeledSampleBatch,
        DriftEvent,
        UpdateRequest,
        Candidate,
        DeploymentEvent,
        DeadLetter,
        Command,
    )
}

