"""Settings of the trainer service (``MODELCI_TRAINER_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import KafkaSettings, ObservabilitySettings, RedisSettings, TritonSettings


class InterferenceSettings(BaseSettings):
    """How the trainer keeps out of serving's way on a shared machine (``MODELCI_TRAINER_CONTROL_*``)."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_TRAINER_CONTROL_", extra="ignore", use_attribute_docstrings=True)

    enabled: bool = True
    """Master switch: off trains flat out (all cores, normal priority, no pauses)."""
    torch_threads: int = 1
    """torch intra-op threads while training (serving keeps the other cores)."""
    nice: int = 19
    """OS niceness added to the trainer process (19: runs only on cycles serving leaves idle)."""
    idle_scheduler: bool = True
    """Linux only: also move the process to SCHED_IDLE, below every normal-priority thread."""
    triton_metrics_url: str | None = None
    """Triton's Prometheus endpoint to watch; empty uses the Triton block's ``metrics_url``."""
    watch_triton: bool = True
    """Pause training while Triton reports serving load above the thresholds below."""
    max_pending_requests: float = 0.0
    """Pause while ``nv_inference_pending_request_count`` summed over models is above this."""
    max_queue_us: float = 2000.0
    """Pause while the mean queue time per request over the last poll interval exceeds this (µs)."""
    max_request_rate: float = -1.0
    """Pause while Triton serves more than this many requests/s (all models); negative: no rate
    rule (the default). A rate rule defers training to quiet periods: at 20 requests/s (the
    default until 2026-12-04) an update under a steady 200 req/s took 57× its solo time
    (`modelci bench interference`, docs/trainer.md), i.e. it never finished under production
    load. Set it where serving latency matters more than updates finishing."""
    poll_interval_s: float = 0.25
    """How often the Triton metrics are read (by a background thread; the hook reads a cached figure)."""
    check_every_steps: int = 1
    """Forward passes between admission checks (each check is a read of a cached flag)."""
    max_pause_s: float = 30.0
    """Longest single pause: after it training takes one step anyway so it always makes progress."""
    duty_cycle: float = 1.0
    """Fraction of wall time training may use when serving is not busy (1.0: no throttling)."""
    low_priority_cuda_stream: bool = True
    """On CUDA, run training kernels on a stream of the lowest priority (no effect where that is
    the default stream's, as on the H200 measured in docs/gpu.md; said once in the log)."""


class TrainerSettings(BaseSettings):
    """Settings of the trainer service (``python -m services.trainer``)."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_TRAINER_", extra="ignore", use_attribute_docstrings=True)

    group_id: str = "modelci-trainer"
    """Consumer group reading ``cl.updates``."""
    artifact_root: str = ".modelci/artifacts"
    """Folder of the content-addressed artifact store shared with the deployer."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: ``auto`` picks CUDA when available, else the CPU."""
    holdout_fraction: float = 0.2
    """Share of inputs held back from training for evaluation (chosen by a hash of the input's
    content, `services.common.tensors.content_buckets`); a model's policy ``holdout_fraction``
    overrides it, so the trainer and the deployer's gate hold back the same inputs."""
    hidden: int = 64
    """Hidden width of the MLP built for a model whose base weights do not say it."""
    lock_ttl_ms: int = 30000
    """Lifetime of the per-model Redis lock; renewed every third of it while training."""
    lock_wait_s: float = 3600.0
    """Longest wait for another trainer's lock on the same model before the request is retried later."""
    sample_read_timeout_s: float = 60.0
    """Longest time to read the sample ranges of one request from ``cl.samples``."""
    poll_timeout_s: float = 0.5
    """Consumer poll timeout (also how quickly shutdown is noticed)."""
    seed: int = 0
    """Seed of torch's generator for each update (reproducible candidates)."""
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    """Kafka connection."""
    redis: RedisSettings = Field(default_factory=RedisSettings)
    """Redis connection (registry, locks, done-set, strategy state pointers)."""
    triton: TritonSettings = Field(default_factory=TritonSettings)
    """Triton endpoints (its metrics drive the admission rule)."""
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    """Logs and /metrics."""
    control: InterferenceSettings = Field(default_factory=InterferenceSettings)
    """Interference control."""
