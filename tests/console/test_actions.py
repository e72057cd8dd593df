"""Actions become the right events on Kafka, are refused when they make no sense, and are audited."""

from __future__ import annotations

import json

from services.common.events import Command, UpdateRequest

from tests.console.conftest import Console, TopicReader


def test_approve_publishes_command_with_actor(console: Console, model: str, commands: TopicReader) -> None:
    with console.client("operator") as http:
        response = http.post(f"/api/v1/models/{model}/versions/3/approve")
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    cmd = commands.wait_for(Command, lambda c: c.event_id == event_id)
    assert (cmd.model, cmd.action, cmd.version, cmd.actor) == (model, "approve", 3, "operator-user")
    with console.client("viewer") as http:
        audit = http.get("/api/v1/audit", params={"model": model}).json()
    assert audit[0]["actor"] == "operator-user" and audit[0]["action"] == "approve"
    assert audit[0]["result"] == "sent" and audit[0]["event_id"] == event_id and audit[0]["version"] == 3


def test_rollback_strategy_and_policy_commands(console: Console, model: str, commands: TopicReader) -> None:
    with console.client("operator") as http:
        rb = http.post(f"/api/v1/models/{model}/rollback", json={"reason": "bad night"}).json()["event_id"]
        st = http.put(f"/api/v1/models/{model}/strategy", json={"strategy": "ewc", "hyperparameters": {"ewc_lambda": 0.4}}).json()["event_id"]
        po = http.put(f"/api/v1/models/{model}/policy", json={"policy": {"promotion": "auto"}}).json()["event_id"]
    rollback = commands.wait_for(Command, lambda c: c.event_id == rb)
    assert (rollback.action, rollback.version, rollback.params) == ("rollback", 1, {"reason": "bad night"})  # previous version
    strategy = commands.wait_for(Command, lambda c: c.event_id == st)
    assert strategy.action == "set_strategy" and strategy.version is None
    assert strategy.params["strategy"] == "ewc" and json.loads(strategy.params["hyperparameters"]) == {"ewc_lambda": 0.4}
    policy = commands.wait_for(Command, lambda c: c.event_id == po)
    assert policy.action == "set_policy" and json.loads(policy.params["policy"]) == {"promotion": "auto"}


def test_manual_update_request(console: Console, model_with_samples: str, updates: TopicReader) -> None:
    model = model_with_samples
    with console.client("admin") as http:
        response = http.post(f"/api/v1/models/{model}/updates", json={"strategy": "lwf", "hyperparameters": {"alpha": 1}})
    assert response.status_code == 202
    request = updates.wait_for(UpdateRequest, lambda u: u.event_id == response.json()["event_id"])
    assert request.model == model and request.reason == "manual" and request.requested_by == "admin"
    # The samples since the base version: where the console's reader saw version 2's samples.
    assert request.base_version == 2
    assert [r.to_record() for r in request.sample_ranges] == [r.to_record() for r in console.state.actions.offsets.ranges(model, 2)]
    assert sum(r.end - r.start for r in request.sample_ranges) == 1
    assert request.strategy == "lwf" and request.hyperparameters == {"alpha": "1"}


def test_manual_update_without_samples_is_refused(console: Console) -> None:
    from tests.console.conftest import seed_model

    name = "nosamples-" + console.url.rsplit(":", 1)[-1]
    seed_model(console.registry, name)
    with console.client("operator") as http:
        response = http.post(f"/api/v1/models/{name}/updates", json={})
    assert response.status_code == 409 and "no labeled samples of version 2" in response.text


def test_nonsense_actions_are_refused_and_audited(console: Console, model: str) -> None:
    with console.client("operator") as http:
        assert http.post(f"/api/v1/models/{model}/versions/2/approve").status_code == 409  # serving, not held
        assert http.post(f"/api/v1/models/{model}/versions/4/reject").status_code == 409  # rejected already
        assert http.post(f"/api/v1/models/{model}/rollback", json={"version": 2}).status_code == 409  # serving already
        assert http.post(f"/api/v1/models/{model}/rollback", json={"version": 4}).status_code == 409  # never served
        assert http.post(f"/api/v1/models/{model}/versions/99/approve").status_code == 404
        assert http.put(f"/api/v1/models/{model}/policy", json={"policy": {"promotion": "yolo"}}).status_code == 422
        assert http.put(f"/api/v1/models/{model}/strategy", json={"strategy": "rm -rf /"}).status_code == 422
        audit = http.get("/api/v1/audit", params={"model": model}).json()
    assert [a["result"] for a in audit].count("refused") == 4
    assert all(a["result"] != "sent" for a in audit)


def test_metrics_count_requests_and_actions(console: Console, model: str) -> None:
    with console.client("operator") as http:
        http.post(f"/api/v1/models/{model}/versions/3/approve")
        http.get("/api/v1/models/nope")
        text = http.get("/metrics").text
    assert 'modelci_console_actions_total{action="approve",outcome="sent"}' in text
    assert 'route="/api/v1/models/{name}",status="404"' in text
    assert 'modelci_console_requests_total{method="POST",route="/api/v1/models/{name}/versions/{version}/approve",status="202"}' in text
