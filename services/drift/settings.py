"""Settings of the drift service, from ``MODELCI_DRIFT_*`` (and the shared ``MODELCI_*`` blocks)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import KafkaSettings, ObservabilitySettings, RedisSettings, settings_field
from services.drift.config import DEFAULT_DETECTORS, DetectorSpec, parse_specs


class DriftSettings(BaseSettings):
    """The drift service: joins, detectors, update policy, and how it runs."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_DRIFT_", extra="ignore", use_attribute_docstrings=True)

    kafka: KafkaSettings = settings_field(KafkaSettings)
    redis: RedisSettings = settings_field(RedisSettings)
    observability: ObservabilitySettings = settings_field(ObservabilitySettings)

    app_id: str = "modelci-drift"
    """Faust application id, i.e. the consumer group (the topic prefix is put in front)."""
    partitions: int = Field(4, ge=1)
    """Partitions of the input topics; created with this many when missing (Faust needs the number)."""
    take_max: int = Field(64, ge=1)
    """Kafka records an agent handles per step (each record is a batch of events)."""
    take_within_s: float = Field(0.05, gt=0)
    """Longest wait for ``take_max`` records before handling what has arrived."""
    align_max_wait_s: float = Field(1.0, ge=0)
    """Longest a feedback step waits for the predictions agent to reach its records' time (so
    that feedback meets its prediction already stored, the cheaper order for Redis); 0: never."""
    steps_in_flight: int = Field(4, ge=1)
    """Steps (of both agents) whose join scripts may be on their way to Redis or unfinished at
    once; the agents wait before taking more."""
    join_ttl_s: float = Field(3600.0, gt=0)
    """How long a prediction waits for its feedback (and early feedback for its prediction)."""
    dedupe_ttl_s: float = Field(86400.0, gt=0)
    """How long joined request ids and handled records are remembered, so that a redelivered
    record or a repeated feedback is recognised; must exceed the longest outage of a worker."""
    snapshot_interval_s: float = Field(2.0, gt=0)
    """How often detector state and counters are saved to Redis (also on drift, revocation, stop)."""
    sweep_interval_s: float = Field(5.0, gt=0)
    """How often feedback that waited longer than ``join_ttl_s`` is counted as expired."""
    cooldown_s: float = Field(600.0, ge=0)
    """Least time between two update requests of one model."""
    min_samples: int = Field(200, ge=0)
    """Labeled samples that must follow a detected change before its update request is sent."""
    inflight_timeout_s: float = Field(6 * 3600.0, gt=0)
    """An update request with no candidate after this long no longer blocks the next one."""
    failed_update_backoff_s: float = Field(600.0, ge=0)
    """Wait after an update that ended in a failed candidate before the next request; doubles with each consecutive failure."""
    failed_update_max_backoff_s: float = Field(24 * 3600.0, ge=0)
    """Longest wait after consecutive failed updates (a succeeded update ends the back-off)."""
    detectors: list[DetectorSpec] = Field(default_factory=lambda: list(DEFAULT_DETECTORS))
    """Detectors of every model (JSON list of specs or shipped names, e.g. ``["error-adwin"]``)."""
    model_detectors: dict[str, list[DetectorSpec]] = Field(default_factory=dict)
    """Per-model detector lists (JSON object model -> list), over ``detectors``."""
    web_port: int | None = None
    """Port of Faust's own web server (off when unset); /metrics is served separately."""
    datadir: str = ""
    """Faust's data directory (it keeps no tables here; empty: a temporary folder per process)."""
    loop: str = "uvloop"
    """Event loop of the worker: ``uvloop`` (faster) or ``aio``."""
    fetch_max_wait_ms: int = Field(50, ge=0)
    """Longest a fetch from the broker waits for new data. Faust fixes it at 1,500 ms; with one
    input topic caught up and the other behind, that long poll stalled the worker most of the
    time (see `services/drift/transport.py`)."""
    switch_interval_s: float = Field(0.05, gt=0)
    """Python's GIL switch interval in the worker (``sys.setswitchinterval``; Python's default
    is 0.005). Faust runs its Kafka consumer in a second thread; with the default the two
    threads handed the GIL back and forth so often that a worker on one core sat idle ~70 % of
    the time (measured: 51k events/s at 27 % CPU vs 188k at 95 % with 0.05)."""
    producer_linger_ms: int = Field(5, ge=0)
    """linger.ms of the producer of samples, drift events and update requests."""

    @field_validator("detectors", mode="before")
    @classmethod
    def _parse_detectors(cls, value: Any) -> list[DetectorSpec]:
        return parse_specs(value)

    @field_validator("model_detectors", mode="before")
    @classmethod
    def _parse_model_detectors(cls, value: Any) -> dict[str, list[DetectorSpec]]:
        if isinstance(value, (str, bytes)):
            value = json.loads(value)
        return {model: parse_specs(specs) for model, specs in dict(value).items()}

    def group_id(self) -> str:
        return f"{self.kafka.topic_prefix}{self.app_id}"

    def redis_prefix(self) -> str:
        return f"{self.redis.key_prefix}drift:"
