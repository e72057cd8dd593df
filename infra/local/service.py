"""A ModelCI-e service as a local process: ``python -m services.<name>``.

It is a `Component` like the servers: own folder under the run folder, PID file, log, stop by
PID. Health is its Prometheus endpoint answering, which every service exposes once its clients
are connected.
"""

from __future__ import annotations

import os
import sys

from infra.local.component import Component
from infra.local.settings import InfraSettings


class ServiceProcess(Component):
    def __init__(self, settings: InfraSettings, name: str, metrics_port: int, env: dict[str, str]) -> None:
        self.name = name
        super().__init__(settings)
        self.metrics_port = metrics_port
        self.env = env

    def ports(self) -> dict[str, int]:
        return {"metrics": self.metrics_port}

    def address(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        env = {**os.environ, **self.env, "MODELCI_METRICS_PORT": str(self.metrics_port), "PYTHONUNBUFFERED": "1"}
        return [sys.executable, "-m", f"services.{self.name}"], env

    def healthy(self) -> bool:
        import httpx

        return httpx.get(self.address(), timeout=1.0).status_code == 200

    def version(self) -> str:
        from importlib.metadata import version

        return version("modelci-e")
