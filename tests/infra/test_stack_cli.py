"""`modelci infra up/status/down` as a user runs them: all five components, nothing left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.process import free_port, pid_alive

REPO = Path(__file__).resolve().parents[2]


def _env(run_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MODELCI_INFRA_RUN_DIR=str(run_dir),
        MODELCI_INFRA_TOOLS_DIR=str(REPO / ".modelci" / "tools"),
        MODELCI_INFRA_KAFKA_PORT=str(free_port()),
        MODELCI_INFRA_KAFKA_CONTROLLER_PORT=str(free_port()),
        MODELCI_INFRA_TANSU_PORT=str(free_port()),
        MODELCI_INFRA_REDIS_PORT=str(free_port()),
        MODELCI_INFRA_TRITON_HTTP_PORT=str(free_port()),
        MODELCI_INFRA_TRITON_GRPC_PORT=str(free_port()),
        MODELCI_INFRA_TRITON_METRICS_PORT=str(free_port()),
        MODELCI_INFRA_PROMETHEUS_PORT=str(free_port()),
    )
    return env


def _modelci(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_up_status_down_leaves_nothing_running(tmp_path):
    env = _env(tmp_path / "run")
    up = _modelci(env, "infra", "up", "--json")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = _modelci(env, "infra", "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        components = {c["name"]: c for c in json.loads(status.stdout)["components"]}
        assert set(components) == {"kafka", "tansu", "redis", "triton", "prometheus"}
        for c in components.values():
            assert c["healthy"] and c["version"] and c["pid"], c
            assert "127.0.0.1" in c["address"]
        assert components["kafka"]["version"].startswith("4.")
        pids = [c["pid"] for c in components.values()]
        for c in components.values():
            assert Path(c["log"]).is_relative_to(tmp_path / "run")
    finally:
        down = _modelci(env, "infra", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    after = _modelci(env, "infra", "status", "--json")
    assert after.returncode == 1
    assert not any(c["healthy"] for c in json.loads(after.stdout)["components"])


def test_port_in_use_is_a_one_line_error_and_starts_nothing(tmp_path):
    env = _env(tmp_path / "run")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["MODELCI_INFRA_PROMETHEUS_PORT"])))
        taken.listen()
        result = _modelci(env, "infra", "up", "--only", "redis", "--only", "prometheus")
    assert result.returncode == 1
    assert "already in use" in result.stdout and env["MODELCI_INFRA_PROMETHEUS_PORT"] in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # redis started first and must have been stopped again: no half-started stack.
    status = _modelci(env, "infra", "status", "--json", "--only", "redis")
    assert json.loads(status.stdout)["components"][0]["pid"] is None


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "services.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    for command in ("infra", "schemas", "config", "bench", "demo"):
        assert command in result.stdout
