"""Approve a held candidate in the browser and watch it become serving, then roll back.

The real deployer (``services.deployer``) runs in this module against the session's Triton,
exactly as in production: the console only publishes the command (checked on ``cl.commands``)
and shows, live, what the deployer's events and registry writes say. It has a console of its
own because the deployer reconciles every model in its registry when it starts.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.process import wait_until
from services.common.artifacts import FileArtifactStore
from services.common.events import Command
from services.common.registry import VersionRecord
from services.common.settings import TritonSettings
from strategies.architecture import Architecture

from tests.console.browser import REPORTS, TIMEOUT_MS, expect, log_in
from tests.console.conftest import Console, TopicReader


def linear_softmax():
    """The registered model's architecture (it returns probabilities)."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1))


def _torchscript() -> bytes:
    import torch

    torch.manual_seed(0)
    module = linear_softmax().eval()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(module, torch.zeros(2, 8)), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def deployed_model(console: Console, triton_server, tmp_path_factory) -> Iterator[tuple[str, object]]:
    """A model registered through the deployer (v1 serving on Triton), a held v2 candidate, and
    the real deployer service consuming ``cl.commands``."""
    from services.deployer.app import DeployerApp
    from services.deployer.register import register_model
    from services.deployer.settings import DeployerSettings
    from services.deployer.triton_ops import TritonOps

    s = triton_server.settings
    triton = TritonSettings(http_url=f"127.0.0.1:{s.triton_http_port}", grpc_url=f"127.0.0.1:{s.triton_grpc_port}",
                            metrics_url=f"http://127.0.0.1:{s.triton_metrics_port}/metrics",
                            model_repository=str(triton_server.model_repository))
    settings = DeployerSettings(kafka=console.settings.kafka, redis=console.settings.redis, triton=triton,
                                artifact_root=str(tmp_path_factory.mktemp("console-artifacts")),
                                group_id=f"deployer-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.2, triton_backoff_s=0.2)
    name = f"web{uuid.uuid4().hex[:8]}"
    store = FileArtifactStore(settings.artifact_root)
    ops = TritonOps(triton.http_url)
    artifact = _torchscript()
    register_model(console.registry, store, ops, Path(triton.model_repository), name, artifact, [8], ["a", "b", "c"],
                   policy={"promotion": "manual"}, actor="test",
                   architecture=Architecture(f"{__name__}:linear_softmax", output="probabilities"))
    uri, digest = store.put(artifact)
    version = console.registry.next_version(name)
    console.registry.put_version(VersionRecord(model=name, version=version, status="held", artifact_uri=uri, artifact_sha256=digest,
                                               base_version=1, strategy="replay", sample_ranges=[{"partition": 0, "start": 0, "end": 499}],
                                               metrics={"new_accuracy": 0.91, "old_accuracy": 0.88}, report={"passed": True}))
    app = DeployerApp(settings)
    thread = threading.Thread(target=app.run, name="deployer", daemon=True)
    thread.start()
    try:
        yield name, version
    finally:
        app.stop_event.set()
        thread.join(30)
        try:
            ops.unload(name)
        except Exception:
            pass


def test_approve_held_candidate_then_roll_back(console: Console, page, deployed_model, commands: TopicReader) -> None:
    name, held = deployed_model
    log_in(page, console, "operator-user", console.passwords["operator"], f"/models/{name}")
    status = lambda v: page.locator(f"tr#v{v} .status")  # noqa: E731
    expect(status(held)).to_have_text("held")
    page.click(f"tr#v{held} button[name=approve]")
    expect(page.locator(".flash")).to_contain_text(f"approve v{held} sent")
    page.wait_for_selector("body[data-live=connected]")
    page.evaluate("window.__sameDocument = 7")
    expect(status(held)).to_have_text("serving", timeout=TIMEOUT_MS)  # the deployer did it; the page saw it live
    expect(status(1)).to_have_text("retired")
    assert page.evaluate("window.__sameDocument") == 7
    approve = commands.wait_for(Command, lambda c: c.model == name and c.action == "approve")
    assert (approve.version, approve.actor) == (held, "operator-user")
    assert console.registry.get_model(name).serving_version == held

    page.click("tr#v1 button[name=rollback]")
    expect(page.locator(".flash")).to_contain_text("rollback v1 sent")
    rollback = commands.wait_for(Command, lambda c: c.model == name and c.action == "rollback")
    assert (rollback.version, rollback.actor) == (1, "operator-user")
    expect(status(1)).to_have_text("serving", timeout=TIMEOUT_MS)
    expect(status(held)).to_have_text("rolled_back")
    expect(page.locator("table.events")).to_contain_text("rolled_back")
    wait_until(lambda: console.registry.get_model(name).serving_version == 1, 30, "the registry to say v1 serves")
    page.screenshot(path=str(REPORTS / "console-model.png"), full_page=True)


def test_strategy_and_policy_forms_are_executed_by_the_deployer(console: Console, page, deployed_model, commands: TopicReader) -> None:
    name, _ = deployed_model
    log_in(page, console, "operator-user", console.passwords["operator"], f"/models/{name}")
    page.fill("#form-strategy input[name=strategy]", "ewc")
    page.fill("#form-strategy textarea[name=hyperparameters]", '{"ewc_lambda": 0.4}')
    page.click("#form-strategy button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("strategy sent")
    command = commands.wait_for(Command, lambda c: c.model == name and c.action == "set_strategy")
    assert command.params == {"strategy": "ewc", "hyperparameters": '{"ewc_lambda": 0.4}'} and command.actor == "operator-user"
    wait_until(lambda: console.registry.get_model(name).strategy == "ewc", 60, "the deployer to change the strategy")
    assert console.registry.get_model(name).hyperparameters == {"ewc_lambda": 0.4}

    page.select_option("#form-policy select[name=promotion]", "auto")
    page.click("#form-policy button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("policy sent")
    wait_until(lambda: console.registry.get_model(name).policy["promotion"] == "auto", 60, "the deployer to change the policy")
    page.reload()
    expect(page.locator(".summary .policy")).to_contain_text("auto")
    expect(page.locator(".summary")).to_contain_text("ewc")
