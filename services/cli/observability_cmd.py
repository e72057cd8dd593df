"""``modelci observability``: regenerate the Grafana dashboards and check rules and dashboards.

Dashboards are code (``infra/grafana``); their JSON under ``infra/grafana/dashboards`` is what
Grafana provisions, so ``check`` fails when the committed JSON is not what the code generates,
and when ``promtool check rules`` rejects a rule file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Prometheus rules and Grafana dashboards as code.", no_args_is_help=True)
console = Console()

RULES_DIR = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "rules"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def promtool_check(files: list[Path]) -> tuple[bool, str]:
    """Runs ``promtool check rules``; (passed, its output)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return False, "promtool not found: install Debian's prometheus package (make system-deps)"
    done = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


@app.command("dashboards")
def dashboards(
    out: Path = typer.Option(None, "--out", help="Folder for the JSON (default: infra/grafana/dashboards)."),
) -> None:
    """Regenerate the dashboard JSON from the code in infra/grafana."""
    from infra.grafana.generate import DASHBOARDS_DIR, write

    for path in write(out or DASHBOARDS_DIR):
        console.print(str(path))


@app.command("check")
def check() -> None:
    """promtool check rules, and the committed dashboard JSON is what the code generates."""
    from infra.grafana.generate import stale

    ok, output = promtool_check(rule_files())
    console.print(output)
    bad = stale()
    if bad:
        console.print(f"[red]stale dashboards:[/red] {', '.join(bad)}: run `modelci observability dashboards`")
    else:
        console.print("dashboards: up to date")
    if not ok or bad:
        raise typer.Exit(1)


@app.command("queries")
def list_queries() -> None:
    """Print every PromQL query the dashboards run (variables set to all)."""
    from infra.grafana.generate import queries, to_promql

    for q in queries():
        console.print(f"[bold]{q.board}[/bold] {q.where}: {to_promql(q.expr)}", soft_wrap=True)
