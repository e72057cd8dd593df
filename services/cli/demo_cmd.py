"""``modelci demo``: the main job on the embedded default."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from infra.local.stack import Stack
from services.common.errors import InfraError

console = Console()


def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave the infrastructure running afterwards."),
) -> None:
    """Start the local infrastructure, show it healthy, and stop it again (unless --keep)."""
    stack = Stack()
    started = time.monotonic()
    try:
        statuses = stack.up()
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    elapsed = time.monotonic() - started
    for s in statuses:
        mark = "[green]healthy[/green]" if s.healthy else "[red]down[/red]"
        console.print(f"{s.name:<11} {s.address:<28} {s.version or '-':<10} {mark}")
    console.print(f"infrastructure up in {elapsed:.1f} s")
    if not keep:
        stack.down()
        console.print("infrastructure stopped")
