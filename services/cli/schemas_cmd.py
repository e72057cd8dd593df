"""``modelci schemas``: parse every event schema and check compatibility with the released ones."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer
from rich.console import Console

from schemas import RELEASED_DIR, SCHEMA_DIR
from services.common.schema_compat import check_release

app = typer.Typer(help="Check and release the Avro event schemas.", no_args_is_help=True)
console = Console()


def _report(problems: list[str]) -> None:
    for problem in problems:
        console.print(f"[red]incompatible:[/red] {problem}")
    if problems:
        raise typer.Exit(1)


@app.command()
def check() -> None:
    """Parse every schema and verify each can read data written with its last released version."""
    _report(check_release(SCHEMA_DIR, RELEASED_DIR))
    console.print(f"{len(list(SCHEMA_DIR.glob('*.avsc')))} schemas parse and are backward compatible")


@app.command()
def release(version: Annotated[str, typer.Argument(help="Release name, e.g. v2.")]) -> None:
    """Freeze the current schemas as a release that later changes must stay compatible with."""
    _report(check_release(SCHEMA_DIR, RELEASED_DIR))
    target = RELEASED_DIR / version
    if target.exists():
        console.print(f"[red]error:[/red] release {version} exists already")
        raise typer.Exit(1)
    target.mkdir(parents=True)
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy2(path, target / path.name)
    console.print(f"released {version}")


@app.command()
def headers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON: event -> header hex.")] = False) -> None:
    """Print the 10-byte single-object header of every event (C3 01 + CRC-64-AVRO, little-endian).

    A producer in a language whose Avro library lacks single-object encoding writes these bytes
    before the Avro body (docs/wire-format.md).
    """
    import json

    from services.common.serde import MARKER, default_registry

    registry = default_registry()
    rows = {event: (MARKER + version.fingerprint).hex() for event, version in sorted(registry.current.items())}
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for event, header in rows.items():
        console.print(f"{event:<20} {header}  {registry.current[event].source.name}")
