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
    args = ["model", "register", env.name, "--artifact", str(artifact), "--factory", models.ARCHITECTURE.factory,
            "--output", models.ARCHITECTURE.output, "--input-shape", str(models.DIM),
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


def test_register_the_teams_architecture_or_refuse_in_one_line(env, trained, tmp_path, monkeypatch):
    """`--factory` + `--weights` registers an architecture other than the built-in MLP, with its
    weights where the first update starts; a TorchScript file the trainer could not rebuild is
    refused before anything is written, not at its first update."""
    import io

    import torch

    from strategies.architecture import Architecture

    for key, value in _env(env.settings).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    common = ["--input-shape", str(models.DIM), "--classes", "0,1,2"]
    alone = tmp_path / "alone.pt"
    alone.write_bytes(trained["v1"])  # a one-hidden-layer MLP: not the built-in layout
    refused = runner.invoke(app, ["model", "register", env.name, "--artifact", str(alone), *common])
    assert refused.exit_code == 1
    assert "not_trainable" in refused.output and "--factory" in refused.output and "Traceback" not in refused.output
    assert env.registry.get_model(env.name) is None and not (env.repository / env.name).exists()

    arch = Architecture("strategies.models:make_tabular", {"input_dim": models.DIM, "num_classes": 3})
    torch.manual_seed(0)
    module = arch.build()
    weights = tmp_path / "weights.pt"
    torch.save(module.state_dict(), weights)
    result = runner.invoke(app, ["model", "register", env.name, "--factory", arch.factory, "--factory-kwargs",
                                 json.dumps(arch.kwargs), "--weights", str(weights), *common, "--json"])
    assert result.exit_code == 0, result.output
    record = env.registry.require_model(env.name)
    assert Architecture.from_dict(record.architecture) == arch and record.serving_version == 1
    v1 = env.registry.require_version(env.name, 1)
    stored = torch.load(io.BytesIO(env.store.get(v1.report["weights_uri"], v1.report["weights_sha256"])), weights_only=True)
    assert all(torch.equal(stored[k], v) for k, v in module.state_dict().items())
    x = models.dataset(4, seed=3)[0]
    served = env.unpinned(x)
    with torch.no_grad():
        expected = torch.softmax(module.eval()(torch.from_numpy(x)), dim=1).numpy()
    assert abs(served - expected).max() < 1e-5
