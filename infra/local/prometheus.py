"""Prometheus from Debian's package, as a plain process with a config from ``infra/prometheus``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from string import Template

from infra.local.component import Component
from services.common.errors import InfraError

CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "prometheus" / "prometheus.local.yml"
RULES_DIR = CONFIG_TEMPLATE.parent / "rules"


class Prometheus(Component):
    name = "prometheus"

    def install(self) -> None:
        if shutil.which("prometheus") is None:
            raise InfraError("prometheus not found: run `make system-deps` (Debian package prometheus)")

    def ports(self) -> dict[str, int]:
        return {"web": self.settings.prometheus_port}

    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    @property
    def targets_dir(self) -> Path:
        return self.home / "targets"

    @property
    def rules_dir(self) -> Path:
        """Rule files Prometheus loads (copies of infra/prometheus/rules; reload with POST /-/reload)."""
        return self.home / "rules"

    def prepare(self) -> None:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        for rules in sorted(RULES_DIR.glob("*.yml")):
            shutil.copyfile(rules, self.rules_dir / rules.name)
        config = Template(CONFIG_TEMPLATE.read_text()).substitute(
            targets_dir=self.targets_dir, rules_dir=self.rules_dir, scrape_interval=self.settings.prometheus_scrape_interval
        )
        (self.home / "prometheus.yml").write_text(config)

    def add_target(self, job: str, address: str, labels: dict[str, str] | None = None) -> None:
        """Registers a /metrics endpoint; Prometheus picks the file up within a second."""
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        entry = [{"targets": [address], "labels": {"service": job, **(labels or {})}}]
        tmp = self.targets_dir / f".{job}.json.tmp"
        tmp.write_text(json.dumps(entry))
        tmp.rename(self.targets_dir / f"{job}.json")

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        return (
            [
                "prometheus",
                f"--config.file={self.home / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            None,
        )

    def healthy(self) -> bool:
        import httpx

        return httpx.get(f"{self.address()}/-/ready", timeout=1.0).status_code == 200

    def version(self) -> str:
        import httpx

        return str(httpx.get(f"{self.address()}/api/v1/status/buildinfo", timeout=1.0).json()["data"]["version"])
