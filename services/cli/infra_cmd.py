"""``modelci infra``: the real local components (Apache Kafka, Tansu, Redis, Triton, Prometheus)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.local.stack import COMPONENTS, Stack
from services.common.errors import InfraError

app = typer.Typer(help="Install, start, stop and inspect the local infrastructure.", no_args_is_help=True)
console = Console()

Only = Annotated[
    list[str] | None,
    typer.Option("--only", "-o", help=f"Limit to these components ({', '.join(COMPONENTS)}); repeatable."),
]


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


@app.command()
def install(only: Only = None) -> None:
    """Fetch what the components need: Kafka's classpath (Maven), the Triton server (PyPI wheel)."""
    try:
        Stack(names=only).install()
    except InfraError as exc:
        _fail(exc)
    console.print("infrastructure installed")


@app.command()
def up(only: Only = None, as_json: Annotated[bool, typer.Option("--json", help="Print status as JSON.")] = False) -> None:
    """Start every component on 127.0.0.1 and wait until each is healthy."""
    try:
        statuses = Stack(names=only).up()
    except InfraError as exc:
        _fail(exc)
    _show(statuses, as_json)


@app.command()
def down(only: Only = None) -> None:
    """Stop every component by the PID it recorded; nothing is left running."""
    try:
        Stack(names=only).down()
    except InfraError as exc:
        _fail(exc)
    console.print("infrastructure stopped")


@app.command()
def status(only: Only = None, as_json: Annotated[bool, typer.Option("--json", help="Print status as JSON.")] = False) -> None:
    """Show each component's address, version, PID and health; exit 1 if any is down."""
    statuses = Stack(names=only).status()
    _show(statuses, as_json)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


def _show(statuses, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"components": [s.as_dict() for s in statuses]}, indent=2))
        return
    table = Table("component", "address", "version", "pid", "healthy")
    for s in statuses:
        table.add_row(s.name, s.address, s.version or "-", str(s.pid or "-"), "[green]yes[/green]" if s.healthy else "[red]no[/red]")
    console.print(table)
