"""Kafka plumbing every service shares: clients, topic creation, dead letters.

Consumers never auto-commit: a service commits an offset only once the effects of the record
are durable (published, stored), so a crash replays instead of losing. What cannot be decoded
or processed goes to ``<topic>.dlq`` as a `DeadLetter`, with the record's bytes unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.common.errors import ModelCIError, SerdeError, TransientError
from services.common.events import DeadLetter
from services.common.partitioner import LIBRDKAFKA_PARTITIONER
from services.common.serde import encode_event
from services.common.settings import KafkaSettings
from services.common.topics import dlq

_log = logging.getLogger("modelci.kafka")


def producer(kafka: KafkaSettings, **extra: Any) -> Producer:
    """An idempotent, acks=all producer: a retried send never duplicates or reorders.

    Keys are placed by murmur2 like Java's default partitioner (`services.common.partitioner`),
    so a model's records from any language's client meet on one partition.
    """
    conf = kafka.confluent_config(
        **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            "partitioner": LIBRDKAFKA_PARTITIONER,
            "logger": _log,
            **extra,
        }
    )
    return Producer(conf)


def consumer(kafka: KafkaSettings, group_id: str, **extra: Any) -> Consumer:
    """A group consumer that commits only when told to."""
    conf = kafka.confluent_config(
        **{
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": kafka.session_timeout_ms,
            "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
            # A topic created a moment before subscribing can be missing from the broker's first
            # metadata answer; librdkafka then looks again only at this interval (5 min default).
            "topic.metadata.refresh.interval.ms": 5000,
            "logger": _log,
            **extra,
        }
    )
    return Consumer(conf)


def ensure_topics(kafka: KafkaSettings, partitions: dict[str, int], timeout_s: float = 15.0) -> None:
    """Creates missing topics (names are logical; the prefix is added here)."""
    admin = AdminClient(kafka.confluent_config(logger=_log))
    new = [NewTopic(kafka.topic(name), num_partitions=n, replication_factor=1) for name, n in partitions.items()]
    for topic, future in admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TransientError(f"cannot create topic {topic}: {exc}") from exc


def flush(prod: Producer, timeout_s: float = 30.0) -> None:
    """Waits until every queued record is acknowledged; raises if some could not be sent."""
    remaining = prod.flush(timeout_s)
    if remaining:
        raise TransientError(f"{remaining} records not acknowledged within {timeout_s:.0f} s")


class DeadLetters:
    """Publishes records a service gave up on to ``<topic>.dlq`` with the reason."""

    def __init__(self, prod: Producer, kafka: KafkaSettings, service: str) -> None:
        self.producer = prod
        self.kafka = kafka
        self.service = service

    def send(self, msg: Message, error: ModelCIError, request_id: str | None = None) -> DeadLetter:
        detail = error.detail if isinstance(error, SerdeError) else str(error)
        letter = DeadLetter(
            service=self.service,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            reason=error.reason,
            detail=detail,
            key=msg.key(),
            value=msg.value(),
            request_id=request_id,
        )
        self.producer.produce(dlq(msg.topic()), key=msg.key(), value=encode_event(letter))
        return letter


def commit(cons: Consumer, messages: Iterable[Message]) -> None:
    """Synchronously commits the offsets after ``messages`` (highest per partition)."""
    from confluent_kafka import TopicPartition

    highest: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic(), msg.partition())
        highest[key] = max(highest.get(key, -1), msg.offset())
    if highest:
        cons.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in highest.items()], asynchronous=False)
