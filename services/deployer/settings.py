"""Settings of the deployer service (``MODELCI_DEPLOYER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import KafkaSettings, ObservabilitySettings, RedisSettings, TritonSettings


class DeployerSettings(BaseSettings):
    """Deployer: consumes candidates, commands and labeled samples; publishes deployments."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_DEPLOYER_", extra="ignore", use_attribute_docstrings=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    triton: TritonSettings = Field(default_factory=TritonSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    group_id: str = "modelci-deployer"
    """Kafka consumer group of the deployer (one active deployer per model partition)."""
    artifact_root: str = ".modelci/artifacts"
    """Root folder of the file artifact store shared with the trainer."""
    poll_timeout_s: float = 0.5
    """How long one poll waits for records before the loop checks for shutdown."""
    triton_retries: int = 6
    """Attempts for a Triton repository call (load, unload, index) before giving up for now."""
    triton_backoff_s: float = 0.5
    """First backoff between Triton attempts; doubles each time, capped at 8 s."""
    load_timeout_s: float = 120.0
    """How long a version may take to become ready after ``load_model``."""
    recent_capacity: int = 4000
    """Labeled samples kept per model and partition as the recent window (validation, shadow)."""
    replay_capacity: int = 2000
    """Size of the per-model reservoir of older samples (the forgetting check's replay set)."""
    processed_ttl_s: int = 7 * 24 * 3600
    """How long processed event ids are remembered for idempotency."""
    registry_refresh_s: float = 5.0
    """How often the serving-version gauge is set from the registry (a model registered with the CLI gets its series within this time)."""
