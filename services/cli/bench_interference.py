"""``modelci bench interference``: Triton latency while idle, while training with and without control."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def interference(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    rate: float = typer.Option(200.0, help="Steady request rate (requests/s, batch 1)."),
    seconds: float = typer.Option(10.0, help="Measured seconds per phase and round."),
    rounds: int = typer.Option(3, help="Rounds of every phase (idle, each control mode under load and solo), interleaved."),
    samples: int = typer.Option(3000, help="Samples per training update (replay strategy)."),
    out_dir: Path = typer.Option(Path("reports"), help="Folder for interference.json and interference.png."),
) -> None:
    """Serving p50/p99 (open loop, from each request's due time) while idle and while an update
    trains with the control as docker-compose ships it (on), as `modelci up` ships it (up), with
    scheduling alone (priority) and without it (off); and what each costs the update: its time
    under load against its solo time."""
    from benchmarks.trainer.interference import run

    report = run(rate=rate, seconds=seconds, samples=samples, rounds=rounds, out_dir=out_dir)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"p99 idle {report['idle_p99_ms']} ms")
    for key in ("on", "up", "priority", "off"):
        typer.echo(
            f"  {key:9} p99 {report[f'control_{key}_p99_ms']} ms ({report[f'ratio_{key}']}x idle); one update "
            f"{report[f'update_seconds_{key}']} s against {report[f'update_seconds_solo_{key}']} s solo "
            f"({report[f'update_slowdown_{key}']}x)"
        )
    typer.echo(f"plot in {out_dir / 'interference.png'}")
