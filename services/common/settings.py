"""Settings shared by every service, read from ``MODELCI_*`` environment variables.

Each service has one settings class (in its own folder) that embeds the blocks below, so the
same variable means the same thing everywhere and the README table is generated from the
classes themselves (``modelci config docs``). Secrets are ``SecretStr``: they reach the clients
but print as ``**********`` in logs and reprs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", use_attribute_docstrings=True)


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster; security options pass straight to both clients."""

    model_config = _config("MODELCI_KAFKA_")

    bootstrap_servers: str = "127.0.0.1:19092"
    """Comma-separated host:port list of brokers."""
    topic_prefix: str = ""
    """Prefix for every topic name (lets several stacks or test runs share one cluster)."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Kafka security protocol."""
    sasl_mechanism: str | None = None
    """SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when SASL is on."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (never logged)."""
    ssl_cafile: str | None = None
    """CA bundle that signed the brokers' certificates."""
    ssl_certfile: str | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: str | None = None
    """Client private key for mutual TLS."""
    session_timeout_ms: int = 6000
    """Consumer-group session timeout; 6 s keeps group joins quick on a one-node broker."""
    heartbeat_interval_ms: int = 1000
    """Consumer-group heartbeat interval."""

    def topic(self, name: str) -> str:
        """The real name of a logical topic such as ``inference.requests``."""
        return f"{self.topic_prefix}{name}"

    def confluent_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka configuration for confluent-kafka producers, consumers and admins."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            conf["ssl.ca.location"] = self.ssl_cafile
        if self.ssl_certfile:
            conf["ssl.certificate.location"] = self.ssl_certfile
        if self.ssl_keyfile:
            conf["ssl.key.location"] = self.ssl_keyfile
        conf.update(extra)
        return conf

    def aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients (and Faust's broker credentials)."""
        conf: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl_mechanism"] = self.sasl_mechanism
            conf["sasl_plain_username"] = self.sasl_username
            conf["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            conf["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        return conf


class RedisSettings(BaseSettings):
    """How to reach Redis, where shared state (joins, detector snapshots, registry) lives."""

    model_config = _config("MODELCI_REDIS_")

    url: SecretStr = SecretStr("redis://127.0.0.1:16379/0")
    """Redis URL, credentials included (redis://user:password@host:port/db, rediss:// for TLS)."""
    key_prefix: str = "modelci:"
    """Prefix of every key, so several stacks or test runs can share one Redis."""

    def client(self, **kwargs: Any):  # -> redis.Redis
        import redis

        return redis.Redis.from_url(self.url.get_secret_value(), **kwargs)

    def async_client(self, **kwargs: Any):  # -> redis.asyncio.Redis
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.url.get_secret_value(), **kwargs)


class TritonSettings(BaseSettings):
    """How to reach Triton Inference Server and where its model repository is."""

    model_config = _config("MODELCI_TRITON_")

    http_url: str = "127.0.0.1:18000"
    """Triton HTTP endpoint, host:port."""
    grpc_url: str = "127.0.0.1:18001"
    """Triton gRPC endpoint, host:port."""
    metrics_url: str = "http://127.0.0.1:18002/metrics"
    """Triton Prometheus metrics endpoint."""
    model_repository: str = ".modelci/run/triton/models"
    """Model repository folder the deployer writes versions into (shared with the server)."""
    model_config_name: str = "local"
    """Config the server was started with: ``local`` (Python-based TorchScript backend of the
    pip-installed server) or empty for ``config.pbtxt`` (libtorch, the NGC image)."""


class ObservabilitySettings(BaseSettings):
    """Logging and metrics of one service process."""

    model_config = _config("MODELCI_")

    log_level: str = "INFO"
    """Log level: DEBUG, INFO, WARNING, ERROR."""
    log_format: Literal["json", "console"] = "json"
    """Structured JSON lines (production) or a readable console format."""
    metrics_port: int = 0
    """Port of this process's Prometheus /metrics endpoint (0 picks a free one)."""
    metrics_host: str = "127.0.0.1"
    """Address the /metrics endpoint binds; 0.0.0.0 inside containers."""




def settings_field(factory: type[BaseSettings]) -> Any:
    """A nested settings block that reads its own ``MODELCI_<BLOCK>_*`` variables."""
    return Field(default_factory=factory)
