"""Fixtures of the console suite: a real console (uvicorn in a thread) on the session's Apache
Kafka and Redis, users of each role with API tokens, a seeded model, and Kafka readers.

The server is module-scoped (its reader's consumer-group join costs seconds); isolation between
modules comes from a topic prefix and a Redis key prefix of its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from infra.local.process import free_port, wait_until
from services.common import kafka, topics
from services.common.events import Event, LabeledSample, LabeledSampleBatch
from services.common.registry import ModelRecord, ModelRegistry, VersionRecord
from services.common.serde import decode_event, encode_event
from services.common.settings import KafkaSettings, RedisSettings
from services.console.app import ConsoleState, build_state, create_app
from services.console.roles import Role
from services.console.settings import ConsoleSettings

ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
ADMIN_PASSWORD = "bootstrap-admin-pw"


@dataclass
class Console:
    url: str
    settings: ConsoleSettings
    state: ConsoleState
    registry: ModelRegistry
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, follow_redirects=False, **kwargs)

    def publish(self, topic: str, event: Event | bytes, key: str = "m") -> None:
        prod = kafka.producer(self.settings.kafka)
        value = event if isinstance(event, bytes) else encode_event(event)
        prod.produce(self.settings.kafka.topic(topic), key=key.encode(), value=value)
        kafka.flush(prod)


class TopicReader:
    """Reads one topic from the beginning with a group of its own (what the owning service would see)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.consumer = kafka.consumer(settings, f"test-{uuid.uuid4().hex[:8]}")
        self.consumer.subscribe([settings.topic(topic)])
        self.seen: list = []

    def wait_for(self, cls, predicate, timeout_s: float = 60.0):
        """Polls until a decoded ``cls`` event satisfies ``predicate``; returns it."""
        found: list = []

        def check() -> bool:
            for ev in self.seen:
                if predicate(ev):
                    found.append(ev)
                    return True
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.seen.append(decode_event(cls, msg.value()))
            return False

        wait_until(check, timeout_s, f"a {cls.__name__} on {self.consumer}")
        return found[0]

    def close(self) -> None:
        self.consumer.close()


def seed_model(registry: ModelRegistry, name: str) -> None:
    """A model with a history: v1 retired, v2 serving, v3 held (manual promotion), v4 rejected."""
    registry.put_model(ModelRecord(name=name, input_shape=[8], classes=["a", "b", "c"], strategy="replay",
                                   hyperparameters={"mem_size": 200}, policy={"promotion": "manual"},
                                   serving_version=2, previous_version=1))
    statuses = {1: "retired", 2: "serving", 3: "held", 4: "rejected"}
    for v, status in statuses.items():
        registry.put_version(VersionRecord(model=name, version=v, status=status, base_version=v - 1 if v > 1 else None,
                                           strategy="replay", sample_ranges=[{"partition": 0, "start": 100 * v, "end": 100 * v + 99}],
                                           metrics={"new_accuracy": 0.8 + v / 100}, report={"passed": status != "rejected"}))


@pytest.fixture(scope="module")
def module_kafka(apache_kafka) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=apache_kafka.address(), topic_prefix=f"c{uuid.uuid4().hex[:10]}.")


@pytest.fixture(scope="module")
def module_redis(redis_server) -> Iterator[RedisSettings]:
    settings = RedisSettings(url=redis_server.address(), key_prefix=f"testc:{uuid.uuid4().hex[:10]}:")
    yield settings
    client = settings.client()
    try:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def run_console(settings: ConsoleSettings) -> Iterator[tuple[str, ConsoleState, FastAPI]]:
    state = build_state(settings)
    app = create_app(settings, state)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2, lifespan="on"))
    thread = threading.Thread(target=server.run, name="console-uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "the console to listen")
        if state.reader is not None:
            wait_until(state.reader.ready.is_set, 90, "the console's event reader to join its group")
        yield f"http://127.0.0.1:{port}", state, app
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def console(module_kafka, module_redis) -> Iterator[Console]:
    settings = ConsoleSettings(kafka=module_kafka, redis=module_redis, admin_password=ADMIN_PASSWORD,
                               group_id=f"console-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.2, live_min_interval_s=0.0,
                               login_max_failures=5)
    for url, state, app in run_console(settings):
        registry = ModelRegistry(state.redis, module_redis.key_prefix)
        c = Console(url=url, settings=settings, state=state, registry=registry, app=app)
        c.passwords["admin"] = ADMIN_PASSWORD
        for role in ROLES:
            user = f"{role}-user" if role != Role.ADMIN else "admin"
            if role != Role.ADMIN:
                _, c.passwords[str(role)] = state.auth.add_user(user, role)
            _, c.tokens[str(role)] = state.auth.create_token(user, "tests")
        yield c


@pytest.fixture
def model(console: Console) -> str:
    name = f"m{uuid.uuid4().hex[:8]}"
    seed_model(console.registry, name)
    return name


def give_samples(console: Console, name: str) -> dict:
    """Labeled samples of the model's serving version (2), once the console's reader has seen them."""
    samples = LabeledSampleBatch(model=name, items=[
        LabeledSample(sample_id=f"{name}-s{i}", model_version=2, features=[0.0] * 8, label=i % 3, predicted=i % 3,
                      confidence=0.9, prediction_partition=0, prediction_offset=i, feedback_partition=0, feedback_offset=i)
        for i in range(4)
    ])
    console.publish(topics.SAMPLES, samples, key=name)
    offsets = console.state.actions.offsets
    wait_until(lambda: bool(offsets.ranges(name, 2)), 60, "the console's reader to see the model's samples")
    return {}


@pytest.fixture
def model_with_samples(console: Console, model: str) -> str:
    give_samples(console, model)
    return model


@pytest.fixture
def commands(console: Console) -> Iterator[TopicReader]:
    reader = TopicReader(console.settings.kafka, topics.COMMANDS)
    yield reader
    reader.close()


@pytest.fixture
def updates(console: Console) -> Iterator[TopicReader]:
    reader = TopicReader(console.settings.kafka, topics.UPDATES)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from tests.console.browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (infra/install-system-deps.sh installs it)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture
def page(browser) -> Iterator:
    from tests.console.browser import TIMEOUT_MS

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()
