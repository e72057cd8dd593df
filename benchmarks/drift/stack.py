"""The broker and Redis a benchmark runs against: the configured ones, or private local ones.

With ``MODELCI_KAFKA_BOOTSTRAP_SERVERS`` / ``MODELCI_REDIS_URL`` set, those are used; otherwise
Apache Kafka and Redis are started through `infra.local` on free ports in a temporary run
folder and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.common.settings import KafkaSettings, RedisSettings

from benchmarks import REPO


@dataclass
class Endpoints:
    kafka: KafkaSettings
    redis: RedisSettings
    broker: str
    """``configured`` or ``apache-kafka (local)``."""
    pids: dict[str, int] = field(default_factory=dict)
    """``kafka`` and ``redis`` process ids when this benchmark started them (their CPU is counted);
    empty for configured ones, whose CPU it cannot see."""


@contextlib.contextmanager
def endpoints(topic_prefix: str, key_prefix: str) -> Iterator[Endpoints]:
    with contextlib.ExitStack() as stack:
        pids: dict[str, int] = {}
        if os.environ.get("MODELCI_KAFKA_BOOTSTRAP_SERVERS"):
            kafka = KafkaSettings(topic_prefix=topic_prefix)
            broker = "configured"
        else:
            component = stack.enter_context(_local("kafka"))
            kafka = KafkaSettings(bootstrap_servers=component.address(), topic_prefix=topic_prefix)
            broker = "apache-kafka (local)"
            pids["kafka"] = component.pid()
        if os.environ.get("MODELCI_REDIS_URL"):
            redis = RedisSettings(key_prefix=key_prefix)
        else:
            component = stack.enter_context(_local("redis"))
            redis = RedisSettings(url=component.address(), key_prefix=key_prefix)
            pids["redis"] = component.pid()
        yield Endpoints(kafka, redis, broker, {k: v for k, v in pids.items() if v})


@contextlib.contextmanager
def _local(name: str) -> Iterator[object]:
    from infra.local.kafka import ApacheKafka
    from infra.local.process import free_port
    from infra.local.redis import Redis
    from infra.local.settings import InfraSettings

    run_dir = Path(tempfile.mkdtemp(prefix=f"modelci-bench-{name}-"))
    settings = InfraSettings(
        run_dir=run_dir,
        tools_dir=REPO / ".modelci" / "tools",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
    )
    component = ApacheKafka(settings) if name == "kafka" else Redis(settings)
    component.start()
    try:
        yield component
    finally:
        component.stop()
