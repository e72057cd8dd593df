"""The deployer as a service over Apache Kafka: approval by a command event, idempotent
replays, and undecodable records parked in the dead-letter topic."""

from __future__ import annotations

from confluent_kafka import Consumer

from infra.local.process import wait_until
from services.common import kafka, topics
from services.common.events import Command, DeadLetter, DeploymentEvent
from services.common.registry import VersionStatus
from services.common.serde import decode_event, encode_event
from tests.deployer.helpers import candidate


class Reader:
    """Collects every record of one topic (own group, from the beginning)."""

    def __init__(self, settings, topic: str, cls) -> None:
        self.cls = cls
        self.items: list = []
        self.c: Consumer = kafka.consumer(settings.kafka, f"reader-{topic}-{id(self)}")
        self.c.subscribe([settings.kafka.topic(topic)])

    def poll(self) -> list:
        for msg in self.c.consume(100, 0.2):
            if not msg.error():
                self.items.append(decode_event(self.cls, msg.value()))
        return self.items

    def close(self) -> None:
        self.c.close()


def _send(settings, topic: str, model: str, value: bytes) -> None:
    prod = kafka.producer(settings.kafka)
    prod.produce(settings.kafka.topic(topic), key=model.encode(), value=value)
    kafka.flush(prod)


def test_manual_promotion_waits_for_an_approve_command(env, trained, start_app):
    env.register(trained["v1"], policy={"promotion": "manual", "check_latency": False})
    running_app = start_app()
    deployments = Reader(env.settings, topics.DEPLOYMENTS, DeploymentEvent)
    dead = Reader(env.settings, topics.dlq(topics.CANDIDATES), DeadLetter)
    try:
        cand = candidate(env, trained["good"])
        _send(env.settings, topics.CANDIDATES, env.name, b"\x00not avro at all")
        _send(env.settings, topics.CANDIDATES, env.name, encode_event(cand))
        wait_until(lambda: any(e.action == "held" for e in deployments.poll()), 120, "held event")
        assert env.registry.require_version(env.name, cand.version).status == VersionStatus.HELD
        assert env.registry.require_model(env.name).serving_version == 1
        wait_until(lambda: len(dead.poll()) == 1, 60, "dead letter")
        assert dead.items[0].reason and dead.items[0].value == b"\x00not avro at all"

        # The same candidate again (a replay) changes nothing; then the operator approves.
        _send(env.settings, topics.CANDIDATES, env.name, encode_event(cand))
        approve = Command(model=env.name, action="approve", actor="alice", version=cand.version)
        _send(env.settings, topics.COMMANDS, env.name, encode_event(approve))
        wait_until(lambda: any(e.action == "deployed" for e in deployments.poll()), 120, "deployed event")
        record = env.registry.require_version(env.name, cand.version)
        assert record.status == VersionStatus.SERVING
        assert record.history[-1]["actor"] == "alice"
        assert env.registry.require_model(env.name).serving_version == cand.version
        assert [e.action for e in deployments.items] == ["validated", "held", "deployed"]
        assert deployments.items[-1].actor == "alice"
        assert env.triton.ready_versions(env.name) == {cand.version}
        assert running_app.metrics.deployments.labels(env.name)._value.get() == 1
    finally:
        deployments.close()
        dead.close()


def test_reject_command_rejects_a_held_version(env, trained, start_app):
    env.register(trained["v1"], policy={"promotion": "manual", "check_latency": False})
    running_app = start_app()
    deployments = Reader(env.settings, topics.DEPLOYMENTS, DeploymentEvent)
    try:
        cand = candidate(env, trained["good"])
        _send(env.settings, topics.CANDIDATES, env.name, encode_event(cand))
        wait_until(lambda: any(e.action == "held" for e in deployments.poll()), 120, "held event")
        reject = Command(model=env.name, action="reject", actor="bob", version=cand.version)
        _send(env.settings, topics.COMMANDS, env.name, encode_event(reject))
        wait_until(lambda: any(e.action == "rejected" for e in deployments.poll()), 60, "rejected event")
        assert env.registry.require_version(env.name, cand.version).status == VersionStatus.REJECTED
        assert env.registry.require_model(env.name).serving_version == 1
        assert deployments.items[-1].reasons == ["rejected_by_operator"]
    finally:
        deployments.close()


def test_a_model_registered_while_the_deployer_runs_has_a_serving_version_series(env, trained, settings, start_app):
    """``modelci model register`` runs in a process of its own with no /metrics: the running
    deployer follows the registry, so the new model's serving version is exported with no deployment,
    and a model that serves nothing loses its series."""
    settings.registry_refresh_s = 0.2
    running_app = start_app()
    assert running_app.consuming.wait(120), "the deployer never finished starting"

    def serving() -> float | None:
        return running_app.metrics.registry.get_sample_value("modelci_deployer_serving_version", {"model": env.name})

    assert serving() is None
    env.register(trained["v1"], policy={"check_latency": False})  # what the CLI runs, on the same Redis
    wait_until(lambda: serving() == 1, 30, "the serving-version gauge of the model registered meanwhile")
    assert running_app.metrics.registry.get_sample_value("modelci_deployer_deployments_total", {"model": env.name}) is None
    env.registry.update_model(env.name, serving_version=None)
    wait_until(lambda: serving() is None, 30, "the gauge of a model that serves nothing removed")
