"""``modelci up`` / ``modelci down`` / ``modelci status``: the embedded default on one machine."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.local.embedded import EmbeddedStack
from services.common.errors import InfraError

console = Console()


def _table(statuses) -> Table:
    table = Table("process", "address", "pid", "healthy", "log")
    for s in statuses:
        table.add_row(s.name, s.address, str(s.pid or "-"), "[green]yes[/green]" if s.healthy else "[red]no[/red]", s.log)
    return table


def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once healthy and leave everything running.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoints and start time as JSON.")] = False,
) -> None:
    """Start the broker, Redis, Triton and Prometheus where no address is configured, then every service.

    Without --detach it stays in the foreground: Ctrl-C (or SIGTERM) stops everything it started.
    """
    stack = EmbeddedStack()
    try:
        endpoints, seconds = stack.up()
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"up_seconds": round(seconds, 2), "endpoints": endpoints.__dict__}))
    else:
        console.print(_table(stack.status()))
        console.print(f"healthy in {seconds:.1f} s — Kafka {endpoints.kafka}, Redis {endpoints.redis}, Triton {endpoints.triton_http}")
        if endpoints.prometheus:
            console.print(f"Prometheus: {endpoints.prometheus}")
    if detach:
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print("running; Ctrl-C stops everything")
    while not stop.wait(1.0):
        pass
    stack.down()
    console.print("stopped")


def down() -> None:
    """Stop everything `modelci up` started, services first, by PID."""
    try:
        names = EmbeddedStack().down()
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"stopped {', '.join(names)}" if names else "nothing was running")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    env: Annotated[bool, typer.Option("--env", help="Print the stack's addresses as shell exports: eval \"$(modelci status --env)\".")] = False,
) -> None:
    """Show every process of the embedded default; exit 1 when one is down or none runs.

    With --env, print the MODELCI_* variables that point an application (or another shell's commands) at this stack, e.g. the broker address for the client library.
    """
    stack = EmbeddedStack()
    if env:
        import shlex

        recorded = stack.recorded()
        if recorded is None:
            console.print("[red]error:[/red] nothing is running: `modelci up`")
            raise typer.Exit(1)
        for key, value in recorded[0].service_env().items():
            typer.echo(f"export {key}={shlex.quote(value)}")
        return
    statuses = stack.status()
    if as_json:
        typer.echo(json.dumps({"processes": [s.as_dict() for s in statuses]}, indent=2))
    else:
        console.print(_table(statuses) if statuses else "nothing is running: `modelci up`")
    if not statuses or not all(s.healthy for s in statuses):
        raise typer.Exit(1)
