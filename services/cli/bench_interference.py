"""``modelci bench interference``: Triton latency while idle, while training with and without control."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from services.cli.bench_cmd import app as bench_app


@bench_app.command("interference")
def interference(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    rate: float = typer.Option(200.0, help="Steady request rate (requests/s, batch 1)."),
    seconds: float = typer.Option(10.0, help="Measured seconds per phase and round."),
    rounds: int = typer.Option(3, help="Rounds of idle / control on / control off, interleaved."),
    samples: int = typer.Option(3000, help="Samples per training update (replay strategy)."),
    out_dir: Path = typer.Option(Path("reports"), help="Folder for interference.json and interference.png."),
) -> None:
    """Serving p50/p99 while idle, while an update trains with interference control, and without it."""
    from services.trainer.bench.run import run

    report = run(rate=rate, seconds=seconds, samples=samples, rounds=rounds, out_dir=out_dir)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(
        f"p99 idle {report['idle_p99_ms']} ms, control on {report['control_on_p99_ms']} ms ({report['ratio_on']}x), "
        f"control off {report['control_off_p99_ms']} ms ({report['ratio_off']}x); plot in {out_dir / 'interference.png'}"
    )
