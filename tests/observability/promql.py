"""Helpers shared by the observability tests: rule files, promtool, and Prometheus's HTTP API."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "infra" / "prometheus" / "rules"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rules() -> list[dict]:
    """Every rule of every group, recording and alerting."""
    return [rule for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool not installed (Debian package prometheus)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def has_data(result: list[dict]) -> bool:
    """True when an API result holds at least one sample that is a number (NaN is no data)."""
    for series in result:
        values = series.get("values") or [series.get("value")]
        if any(v is not None and not math.isnan(float(v[1])) for v in values):
            return True
    return False


class PromAPI:
    def __init__(self, address: str) -> None:
        self.client = httpx.Client(base_url=address, timeout=10.0)

    def _get(self, path: str, **params) -> dict:
        body = self.client.get(path, params=params).json()
        assert body["status"] == "success", body
        return body["data"]

    def instant(self, expr: str) -> list[dict]:
        return self._get("/api/v1/query", query=expr)["result"]

    def range(self, expr: str, start: float, end: float, step: str = "2s") -> list[dict]:
        return self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self) -> list[dict]:
        return self._get("/api/v1/alerts")["alerts"]

    def rule_groups(self) -> list[dict]:
        return self._get("/api/v1/rules")["groups"]

    def reload(self) -> None:
        self.client.post("/-/reload").raise_for_status()
