"""Settings of the inference service, read from ``MODELCI_INFERENCE_*`` variables.

Kafka, Triton and observability settings are the shared blocks (``MODELCI_KAFKA_*``,
``MODELCI_TRITON_*``, ``MODELCI_*``), so one variable means the same thing in every service.
"""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import KafkaSettings, ObservabilitySettings, TritonSettings, settings_field


class InferenceSettings(BaseSettings):
    """The inference worker: micro-batching, Triton calls, retries and commits."""

    model_config = SettingsConfigDict(env_prefix="MODELCI_INFERENCE_", extra="ignore", use_attribute_docstrings=True)

    group_id: str = "modelci-inference"
    """Consumer group; run more workers with the same id to split the request partitions."""
    batch_size: int = 64
    """Most requests in one micro-batch (a full batch is sent at once)."""
    batch_deadline_ms: float = 10.0
    """Longest time the first request of a micro-batch waits for others before the batch is sent."""
    triton_protocol: Literal["grpc", "http"] = "grpc"
    """How to call Triton: ``grpc`` (``MODELCI_TRITON_GRPC_URL``) or ``http`` (``MODELCI_TRITON_HTTP_URL``)."""
    triton_timeout_s: float = 10.0
    """Timeout of one Triton call; a timeout counts as an outage and is retried."""
    triton_concurrency: int = 4
    """Triton calls in flight at once (one per model group of a micro-batch)."""
    metadata_ttl_s: float = 30.0
    """How long a model's metadata (input dims, datatype, batch size) is cached."""
    retry_initial_ms: float = 100.0
    """First wait after a failed Triton call; doubles on every further failure."""
    retry_max_ms: float = 5000.0
    """Cap of the wait between retries (an outage is retried for ever at this pace)."""
    internal_error_retries: int = 2
    """Retries of a batch that Triton failed with a 500 before it is bisected to find bad inputs."""
    model_not_ready_grace_s: float = 120.0
    """How long a model that is in the repository but not loaded is waited for before its
    requests are dead-lettered as ``unknown_model``."""
    commit_interval_ms: float = 200.0
    """Shortest time between two offset commits (commits only cover acknowledged records)."""
    statistics_interval_ms: int = 5000
    """librdkafka statistics interval; feeds the consumer-lag gauge (0 turns it off)."""
    producer_linger_ms: float = 5.0
    """librdkafka ``linger.ms`` of the producer that publishes predictions and dead letters."""
    create_topics: bool = True
    """Create the request, prediction and dead-letter topics at start when missing."""
    topic_partitions: int = 4
    """Partitions of topics this service creates."""
    shutdown_timeout_s: float = 30.0
    """On SIGTERM, how long the current batch may take (e.g. retrying Triton) before it is
    abandoned uncommitted (its requests are redelivered to the next worker)."""

    kafka: KafkaSettings = settings_field(KafkaSettings)
    triton: TritonSettings = settings_field(TritonSettings)
    observability: ObservabilitySettings = settings_field(ObservabilitySettings)
