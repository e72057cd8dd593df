"""Renders every dashboard to JSON, writes ``dashboards/``, and lists the PromQL they run.

``python -m infra.grafana.generate`` (or ``modelci observability dashboards``) rewrites the JSON;
``stale()`` says which committed files differ from the code, which CI checks. ``queries()`` is
what the observability tests evaluate against a real Prometheus: every panel target, every
annotation and every variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from infra.grafana import overview, service_boards

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

BOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "overview": overview.overview,
    "inference": service_boards.inference,
    "drift": service_boards.drift,
    "trainer": service_boards.trainer,
    "deployer": service_boards.deployer,
    "console": service_boards.console,
    "triton": service_boards.triton,
}


def render() -> dict[str, str]:
    """File name -> JSON text, stable across runs (sorted keys) so diffs show real changes."""
    return {
        f"{name}.json": JSONEncoder(sort_keys=True, indent=2).encode(make().build()) + "\n"
        for name, make in BOARDS.items()
    }


def write(out: Path = DASHBOARDS_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = out / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    for extra in sorted(set(out.glob("*.json")) - set(written)):
        extra.unlink()  # a dashboard removed from the code goes from the folder too
    return written


def stale(out: Path = DASHBOARDS_DIR) -> list[str]:
    """Names of dashboard files that are missing, different from the code, or no longer generated."""
    rendered = render()
    bad = [n for n, text in rendered.items() if not (out / n).exists() or (out / n).read_text() != text]
    bad += sorted(p.name for p in out.glob("*.json") if p.name not in rendered)
    return bad


@dataclass(frozen=True)
class Query:
    """One PromQL query a dashboard runs, with where it comes from."""

    board: str
    where: str  # "panel <title> [A]", "annotation <name>", "variable <name>"
    expr: str
    instant: bool = False


_LABEL_VALUES = re.compile(r"^label_values\((?P<metric>.+),\s*(?P<label>\w+)\)$")


def to_promql(expr: str, variables: dict[str, str] | None = None) -> str:
    """What Grafana sends: variables replaced (all selected = ``.*``), ``label_values()`` as a query."""
    values = {"model": ".*", "version": ".*", "__rate_interval": "1m", "__interval": "15s", **(variables or {})}
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", values[name]).replace(f"${name}", values[name])
    m = _LABEL_VALUES.match(expr.strip())
    if m:  # Grafana asks the series API; the same answer, as a query: one series per label value
        expr = f"count by ({m['label']}) ({m['metric']})"
    return expr


def queries(boards: dict[str, str] | None = None) -> list[Query]:
    """Every query of every dashboard (the JSON as generated, or the given texts)."""
    found: list[Query] = []
    for name, text in sorted((boards or render()).items()):
        board = json.loads(text)
        for panel in board.get("panels", []):
            for target in panel.get("targets", []) or []:
                if target.get("expr"):
                    where = f"panel {panel['title']!r} [{target.get('refId', '')}]"
                    found.append(Query(name, where, target["expr"], bool(target.get("instant"))))
        for ann in board.get("annotations", {}).get("list", []):
            if ann.get("expr"):
                found.append(Query(name, f"annotation {ann['name']!r}", ann["expr"]))
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") == "query" and isinstance(var.get("query"), str):
                found.append(Query(name, f"variable {var['name']!r}", var["query"], instant=True))
    return found


if __name__ == "__main__":
    for path in write():
        print(path)
