"""Where the local infrastructure lives and which ports it takes."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class InfraSettings(BaseSettings):
    """Settings of ``modelci infra`` and of the embedded default's components."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_INFRA_", extra="ignore", use_attribute_docstrings=True)

    run_dir: Path = Path(".modelci/run")
    """Folder holding every component's data, logs, configs and PID files."""
    tools_dir: Path = Path(".modelci/tools")
    """Folder for installed tools (Kafka classpath, unpacked Triton server)."""
    kafka_port: int = 19092
    """Apache Kafka client listener port."""
    kafka_controller_port: int = 19093
    """Apache Kafka KRaft controller port."""
    kafka_heap: str = "512m"
    """JVM heap of the Kafka broker (-Xmx)."""
    tansu_port: int = 19192
    """Tansu (embedded broker) listener port."""
    redis_port: int = 16379
    """Redis port."""
    triton_http_port: int = 18000
    """Triton HTTP port."""
    triton_grpc_port: int = 18001
    """Triton gRPC port."""
    triton_metrics_port: int = 18002
    """Triton metrics port."""
    prometheus_port: int = 19090
    """Prometheus web port."""
    prometheus_scrape_interval: str = "2s"
    """How often the local Prometheus scrapes its targets."""
    service_port_base: int = 19400
    """First /metrics port of the embedded services (inference, drift, trainer, deployer, console follow)."""
    start_timeout_s: float = 60.0
    """How long a component may take to become healthy before start-up fails."""
