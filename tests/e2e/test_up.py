"""`modelci up` on the embedded default: healthy, clean stop, and one-line errors for bad setups."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from infra.local.embedded import SERVICES
from infra.local.process import free_port, pid_alive, wait_until
from infra.local.settings import InfraSettings

REPO = Path(__file__).resolve().parents[2]


def _env(settings: InfraSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCI_")}
    for name, value in settings.model_dump().items():
        env[f"MODELCI_INFRA_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def _modelci(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_up_reaches_healthy_and_down_stops_everything(stack_settings: InfraSettings):
    env = _env(stack_settings)
    up = _modelci(env, "up", "--detach", "--json")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        report = json.loads(up.stdout.strip().splitlines()[-1])
        assert report["endpoints"]["started"][:3] == ["tansu", "redis", "triton"]
        status = _modelci(env, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        processes = {p["name"]: p for p in json.loads(status.stdout)["processes"]}
        assert set(SERVICES) <= set(processes)
        assert all(p["healthy"] for p in processes.values()), processes
        logs = {Path(p["log"]).parent.parent for p in processes.values()}
        assert logs == {stack_settings.run_dir.resolve()}, "one run folder holds every log"
        pids = [p["pid"] for p in processes.values()]
        # Triton's backend stubs are children of the server: their group goes with it.
    finally:
        down = _modelci(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert _modelci(env, "status").returncode == 1


def test_port_taken_fails_in_one_line_and_leaves_nothing(stack_settings: InfraSettings):
    env = _env(stack_settings)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", stack_settings.service_port_base + SERVICES.index("drift")))
        taken.listen()
        result = _modelci(env, "up", "--detach")
    assert result.returncode == 1
    assert "already in use" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert not (stack_settings.run_dir / "embedded.json").exists()
    assert not list(stack_settings.run_dir.glob("*/pid")) or all(
        not pid_alive(int(p.read_text())) for p in stack_settings.run_dir.glob("*/pid")
    )


def test_unreachable_configured_broker_is_a_one_line_error(stack_settings: InfraSettings):
    env = _env(stack_settings, MODELCI_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    result = _modelci(env, "up", "--detach", timeout=60)
    assert result.returncode == 1
    assert "does not answer" in result.stdout and "MODELCI_KAFKA_BOOTSTRAP_SERVERS" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (stack_settings.run_dir / "embedded.json").exists()


def test_demo_without_a_running_stack_says_what_to_do(stack_settings: InfraSettings):
    result = _modelci(_env(stack_settings), "demo", timeout=60)
    assert result.returncode == 1
    message = (result.stdout + result.stderr).strip()
    assert "modelci up" in message and "Traceback" not in message


def test_model_commands_find_the_stack_up_started(stack_settings: InfraSettings, tmp_path: Path):
    """After `modelci up`, register / versions / approve / reject / rollback reach its broker,
    Redis and Triton with no address in the environment (the embedded broker is not on the
    services' default port), and the deployer carries the commands out."""
    from infra.local.embedded import EmbeddedStack
    from services.common.artifacts import FileArtifactStore
    from services.common.registry import ModelRegistry, VersionRecord, VersionStatus
    from services.common.settings import RedisSettings
    from tests.deployer import models

    env = _env(stack_settings)
    up = _modelci(env, "up", "--detach", "--json")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        endpoints, _ = EmbeddedStack(stack_settings).recorded()
        assert endpoints.kafka.rsplit(":", 1)[1] != "19092", "the test must not pass by the default port"
        x, y = models.dataset(400, "a", seed=4)
        artifacts = [models.script(models.train(x, y, epochs=60, seed=s)) for s in (1, 2, 3)]
        (tmp_path / "v1.pt").write_bytes(artifacts[0])
        name = "cli-model"

        def ok(*args: str) -> str:
            result = _modelci(env, "model", *args, timeout=120)
            assert result.returncode == 0, f"modelci model {' '.join(args)}: {result.stdout}{result.stderr}"
            return result.stdout

        ok("register", name, "--artifact", str(tmp_path / "v1.pt"), "--factory", models.ARCHITECTURE.factory,
           "--output", models.ARCHITECTURE.output, "--input-shape", str(models.DIM),
           "--classes", "0,1,2", "--policy", "promotion=manual", "--json")
        assert [(v["version"], v["status"]) for v in json.loads(ok("versions", name, "--json"))] == [(1, "serving")]

        # Two candidates held for approval, as the deployer leaves them under promotion=manual.
        registry = ModelRegistry(RedisSettings(url=endpoints.redis).client())
        store = FileArtifactStore(endpoints.artifacts)
        for data in artifacts[1:]:
            uri, digest = store.put(data)
            registry.put_version(VersionRecord(model=name, version=registry.next_version(name), status=VersionStatus.HELD,
                                               artifact_uri=uri, artifact_sha256=digest, base_version=1, strategy="replay"))

        def serving() -> int | None:
            return registry.require_model(name).serving_version

        ok("approve", name, "2")
        wait_until(lambda: serving() == 2, 120, "v2 approved and serving")
        ok("reject", name, "3")
        wait_until(lambda: registry.require_version(name, 3).status == VersionStatus.REJECTED, 60, "v3 rejected")
        ok("rollback", name)
        wait_until(lambda: serving() == 1, 120, "rolled back to v1")
        statuses = {v["version"]: v["status"] for v in json.loads(ok("versions", name, "--json"))}
        assert statuses == {1: "serving", 2: "rolled_back", 3: "rejected"}
    finally:
        down = _modelci(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
