"""One error root for the whole project.

Every error knows two things the caller must decide on: whether retrying can help
(`retryable`), and the short machine-readable `reason` that goes into a dead-letter record or
an API response. Callers branch on those attributes, never on message text.
"""

from __future__ import annotations


class ModelCIError(Exception):
    """Root of every error ModelCI-e raises on purpose."""

    retryable: bool = False
    reason: str = "error"
    http_status: int = 500


class ConfigurationError(ModelCIError):
    """Settings or files that cannot work; fixing them needs a person, so never retried."""

    reason = "configuration"
    http_status = 500


class InfraError(ModelCIError):
    """A local component (broker, Redis, Triton, Prometheus) failed to install, start or stop."""

    reason = "infra"


class PortInUseError(InfraError):
    """A configured port is already bound by some other process."""

    reason = "port_in_use"


class SchemaError(ModelCIError):
    """A schema file is invalid, or a change to it breaks readers of older data."""

    reason = "schema"


class SerdeError(ModelCIError):
    """An event that cannot be decoded or encoded.

    Carries where the bytes came from, so that the dead-letter record and the log line say
    exactly which record was bad without anyone re-reading the topic.
    """

    reason = "undecodable"
    http_status = 400

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = f"{topic}[{partition}]@{offset}" if topic is not None else "<no source>"
        super().__init__(f"{where}: {reason}: {detail}")

    def located(self, topic: str, partition: int | None, offset: int | None) -> "SerdeError":
        """The same error with its Kafka coordinates filled in by the consumer that saw it."""
        return SerdeError(self.reason, self.detail, topic=topic, partition=partition, offset=offset)


class TransientError(ModelCIError):
    """A dependency is down or slow; the same operation may succeed later."""

    retryable = True
    reason = "transient"
    http_status = 503


class UnknownModel(ModelCIError):
    """No such model (or no such version of it) where it was looked up, in the registry or in
    Triton: the request or event can never succeed, so it is dead-lettered at once."""

    reason = "unknown_model"
    http_status = 404
