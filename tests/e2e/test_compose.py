"""docker-compose.yml: valid for Compose, and its service commands are the ones run natively.

No Docker engine runs here, so the file is checked by Compose itself (`docker compose config`,
or Debian's docker-compose where the v2 plugin is absent) and each container's command is the
same `python -m services.<name>` that `modelci up` starts (tests/e2e/test_up.py runs them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from infra.local.embedded import SERVICES

REPO = Path(__file__).resolve().parents[2]


def _compose() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "neither `docker compose` nor docker-compose is installed (make system-deps)"
    return ["docker-compose"]


def test_compose_file_is_valid():
    env = {**os.environ, "MODELCI_CONSOLE_ADMIN_PASSWORD": "change-me"}
    result = subprocess.run([*_compose(), "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert {"kafka", "redis", "triton", "prometheus", "grafana", *SERVICES} <= set(config["services"])


def test_console_refuses_to_start_without_an_admin_password():
    env = {k: v for k, v in os.environ.items() if k != "MODELCI_CONSOLE_ADMIN_PASSWORD"}
    result = subprocess.run([*_compose(), "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode != 0 and "MODELCI_CONSOLE_ADMIN_PASSWORD" in result.stderr


def test_every_service_container_runs_the_native_entry_point():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in SERVICES:
        command = services[name]["command"]
        assert command == ["python", "-m", f"services.{name}"], (name, command)
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None, name
        env = services[name].get("environment", {})
        assert env.get("MODELCI_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092"
        assert env.get("MODELCI_REDIS_URL") == "redis://redis:6379/0"


def test_grafana_provisions_the_generated_dashboards():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    mounts = services["grafana"]["volumes"]
    assert any(m.startswith("./infra/grafana/dashboards:") for m in mounts)
    assert list((REPO / "infra" / "grafana" / "dashboards").glob("*.json")), "no generated dashboards"
