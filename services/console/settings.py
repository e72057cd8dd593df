"""Settings of the console (``MODELCI_CONSOLE_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import KafkaSettings, ObservabilitySettings, RedisSettings


class ConsoleSettings(BaseSettings):
    """Console: web interface and REST API; reads the registry and CL events, publishes commands."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_CONSOLE_", extra="ignore", use_attribute_docstrings=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    host: str = "127.0.0.1"
    """Address the web server binds; 0.0.0.0 inside containers."""
    port: int = 8080
    """Port of the web interface and the REST API."""
    admin_password: SecretStr | None = None
    """Password of the ``admin`` user created at start when no user exists yet (never logged)."""
    session_secret: SecretStr | None = None
    """Key that signs session cookies; set the same value on every replica (random per process if unset)."""
    session_ttl_s: int = 8 * 3600
    """How long a browser session lives without a new login."""
    login_max_failures: int = 10
    """Failed logins per user name within ``login_lockout_s`` before further attempts are refused (429)."""
    login_lockout_s: int = 900
    """Window of the failed-login count; the lock lifts when it expires."""
    cookie_secure: bool = False
    """Mark cookies ``Secure`` (HTTPS only); turn on behind TLS."""
    group_id: str = "modelci-console"
    """Kafka consumer group of the event reader (replicas share it; live updates fan out via Redis)."""
    consume_events: bool = True
    """Run the background reader of drift, update, candidate, deployment and sample events."""
    poll_timeout_s: float = 0.5
    """How long one poll waits before the reader checks for shutdown."""
    max_batch: int = 500
    """Most records the reader applies before committing their offsets at once."""
    timeline_length: int = 500
    """Events kept per model for the history page and the chart markers."""
    accuracy_window: int = 500
    """Labeled samples per model version behind the rolling live accuracy."""
    series_length: int = 720
    """Points kept per model in the accuracy time series of the chart."""
    live_min_interval_s: float = 1.0
    """Least time between two live accuracy pushes for one model (drift, updates, deploys are never throttled)."""
    audit_length: int = 10000
    """Entries kept in the audit log stream."""
    seen_ttl_s: int = 7 * 24 * 3600
    """How long consumed event ids are remembered, so a replayed event is not counted twice."""
