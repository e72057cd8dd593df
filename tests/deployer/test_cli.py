"""``modelci model register`` / ``list`` / ``versions`` and ``python -m services.deployer`` as a
process: metrics endpoint with the serving version, graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
from typer.testing import CliRunner

from infra.local.process import free_port, wait_until
from services.cli.main import app
from tests.deployer import models


def _env(settings) -> dict[str, str]:
    return {
        "MODELCI_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "MODELCI_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "MODELCI_REDIS_URL": settings.redis.url.get_secret_value(),
        "MODELCI_REDIS_KEY_PREFIX": settings.redis.key_prefix,
        "MODELCI_TRITON_HTTP_URL": settings.triton.http_url,
        "MODELCI_TRITON_GRPC_URL": settings.triton.grpc_url,
        "MODELCI_TRITON_MODEL_REPOSITORY": settings.triton.model_repository,
        "MODELCI_DEPLOYER_ARTIFACT_ROOT": settings.artifact_root,
        "MODELCI_DEPLOYER_GROUP_ID": settings.group_id,
    }


def test_register_cli_and_service_process(env, trained, tmp_path, monkeypatch):
    variables = _env(env.settings)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(trained["v1"])
    runner = CliRunner()
    args = ["model", "register", env.name, "--artifact", str(artifact), "--input-shape", str(models.DIM),
            "--classes", "0,1,2", "--policy", "promotion=manual", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == "serving"
    assert env.triton.ready_versions(env.name) == {1}
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "registered already" in again.output
    out = runner.invoke(app, ["model", "list", "--json"])
    listed = json.loads(out.stdout)
    assert [(m["name"], m["serving_version"], m["policy"]["promotion"]) for m in listed] == [(env.name, 1, "manual")]
    versions = json.loads(runner.invoke(app, ["model", "versions", env.name, "--json"]).stdout)
    assert versions[0]["history"][-1]["status"] == "serving"

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "services.deployer"], env={**os.environ, **variables,
                            "MODELCI_METRICS_PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def serving_gauge() -> bool:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return False
            return f'modelci_deployer_serving_version{{model="{env.name}"}} 1.0' in text

        wait_until(serving_gauge, 120, "deployer /metrics with the serving version", alive=lambda: proc.poll() is None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
