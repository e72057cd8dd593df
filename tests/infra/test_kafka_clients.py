"""Avro events through both brokers with both clients: consumer groups, commits, resume."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common import kafka as k
from services.common.events import Feedback, FeedbackBatch
from services.common.serde import decode_event, encode_event
from services.common.settings import KafkaSettings

N = 40


def _events() -> list[FeedbackBatch]:
    return [FeedbackBatch(model="digits", items=[Feedback(request_id=f"r{i}", label=i % 10)]) for i in range(N)]


def _consume(cons, want: int, timeout_s: float = 60.0) -> list:
    import time

    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        msg = cons.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append(msg)
    return got


def test_confluent_kafka_group_commit_and_resume(any_broker: KafkaSettings):
    topic = any_broker.topic("inference.feedback")
    k.ensure_topics(any_broker, {"inference.feedback": 2})
    sent = _events()
    prod = k.producer(any_broker)
    for event in sent:
        prod.produce(topic, key=event.model.encode(), value=encode_event(event))
    k.flush(prod)

    group = f"{any_broker.topic_prefix}g"
    first = k.consumer(any_broker, group)
    first.subscribe([topic])
    half = _consume(first, N // 2)
    assert len(half) >= N // 2
    half = half[: N // 2]
    # Commit exactly what was processed; anything fetched beyond must be seen again.
    k.commit(first, half)
    first.close()

    second = k.consumer(any_broker, group)
    second.subscribe([topic])
    rest = _consume(second, N - len(half))
    second.close()

    decoded = [decode_event(FeedbackBatch, m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset()) for m in half + rest]
    seen = {e.event_id for e in decoded}
    assert seen == {e.event_id for e in sent}
    assert len(decoded) == N, "a committed record was delivered again after the restart"
    assert all(m.key() == b"digits" for m in half + rest)


def test_aiokafka_group_commit_and_resume(any_broker: KafkaSettings):
    topic = any_broker.topic("inference.feedback")
    k.ensure_topics(any_broker, {"inference.feedback": 2})
    sent = _events()
    group = f"{any_broker.topic_prefix}ag"
    common = dict(
        any_broker.aiokafka_config(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=any_broker.session_timeout_ms,
        heartbeat_interval_ms=any_broker.heartbeat_interval_ms,
    )

    async def scenario() -> list[FeedbackBatch]:
        producer = AIOKafkaProducer(**any_broker.aiokafka_config(), acks="all")
        await producer.start()
        try:
            for event in sent:
                await producer.send_and_wait(topic, encode_event(event), key=b"digits")
        finally:
            await producer.stop()

        received: list[FeedbackBatch] = []

        async def take(want: int) -> None:
            consumer = AIOKafkaConsumer(topic, **common)
            await consumer.start()
            try:
                got = 0
                while got < want:
                    batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500, max_records=want - got), 60)
                    for tp, msgs in batch.items():
                        for msg in msgs:
                            received.append(decode_event(FeedbackBatch, msg.value, topic=msg.topic, partition=msg.partition, offset=msg.offset))
                            got += 1
                        await consumer.commit({TopicPartition(tp.topic, tp.partition): msgs[-1].offset + 1})
            finally:
                await consumer.stop()

        await asyncio.wait_for(take(N // 2), 90)
        await asyncio.wait_for(take(N - N // 2), 90)
        return received

    received = asyncio.run(scenario())
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in sent)


def test_dead_letters_carry_reason_and_original_bytes(kafka_settings: KafkaSettings):
    from services.common.errors import SerdeError
    from services.common.events import DeadLetter
    from services.common.topics import dlq

    topic = kafka_settings.topic("inference.feedback")
    k.ensure_topics(kafka_settings, {"inference.feedback": 1, "inference.feedback.dlq": 1})
    prod = k.producer(kafka_settings)
    prod.produce(topic, key=b"digits", value=b"not avro at all")
    k.flush(prod)
    cons = k.consumer(kafka_settings, f"{kafka_settings.topic_prefix}dlq-test")
    cons.subscribe([topic])
    [msg] = _consume(cons, 1)
    with pytest.raises(SerdeError) as info:
        decode_event(FeedbackBatch, msg.value(), topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
    k.DeadLetters(prod, kafka_settings, "test").send(msg, info.value)
    k.flush(prod)
    cons.close()

    reader = k.consumer(kafka_settings, f"{kafka_settings.topic_prefix}dlq-reader")
    reader.subscribe([dlq(topic)])
    [letter_msg] = _consume(reader, 1)
    reader.close()
    letter = decode_event(DeadLetter, letter_msg.value())
    assert letter.reason == "bad_marker"
    assert letter.value == b"not avro at all" and letter.key == b"digits"
    assert (letter.topic, letter.partition, letter.offset) == (topic, msg.partition(), msg.offset())
