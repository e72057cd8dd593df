"""Which partition a keyed record lands on: Java's default partitioner, so every language agrees.

ModelCI-e keys every event by model name, and a model's requests, predictions and feedback must
meet on the same partition number for the drift service's joins and detectors to stay per
partition. Apache Kafka's Java client, kafkajs's default partitioner and aiokafka hash keys
with murmur2; librdkafka (and so confluent-kafka for Python, Go and .NET) defaults to CRC32. The
project's producers therefore set librdkafka's ``partitioner=murmur2_random`` (murmur2 for keyed
records, random for unkeyed, like Java), and this module computes the same placement for tests
and for tools that need to know where a model's records are (docs/wire-format.md).
"""

from __future__ import annotations

LIBRDKAFKA_PARTITIONER = "murmur2_random"
"""librdkafka's name for Java's default keyed placement."""

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as a signed 32-bit int."""
    length = len(key)
    h = (_SEED ^ length) & _MASK
    tail = length - (length % 4)
    for i in range(0, tail, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= key[tail + 2] << 16
    if rest >= 2:
        h ^= key[tail + 1] << 8
    if rest >= 1:
        h ^= key[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition Java's default partitioner (and the project's producers) picks for ``key``."""
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
