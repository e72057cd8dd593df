"""``modelci bench deploy``: failed requests and switch times while versions are published and rolled back."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def deploy(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    versions: int = typer.Option(3, "--versions", "-k", help="New versions published back to back (K)."),
    rollbacks: int = typer.Option(2, "--rollbacks", "-r", help="Rollbacks after them (R)."),
    rate: float = typer.Option(100.0, help="Steady request rate of the client (requests/s, batch 1, unpinned)."),
    steady_s: float = typer.Option(8.0, help="Seconds of steady state measured before the switches."),
    out_dir: Path = typer.Option(Path("reports"), help="Folder for deploy.json and deploy.png."),
) -> None:
    """Own Triton and Redis; a steady client; K publications and R rollbacks; JSON and a plot."""
    from services.common.logs import configure
    from benchmarks.deployer.switch import run

    configure("bench-deploy", fmt="console")  # the in-process deployer's logs go to stderr, so --json prints JSON alone
    report = run(versions=versions, rollbacks=rollbacks, rate=rate, steady_s=steady_s, out_dir=out_dir)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(
        f"{report['requests']} requests, {report['failed']} failed; switch median {report['switch_median_s']} s, "
        f"max {report['switch_max_s']} s; p99 ratio {report['p99_ratio']}; plot in {out_dir / 'deploy.png'}"
    )
