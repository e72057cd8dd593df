"""``modelci bench``: benchmarks that print JSON (and write plots) for the README's figures.

The code behind each command lives under ``benchmarks/<area>/``; the modules here only parse the
command line. Commands are registered below, by name, so that importing a module has no effect.
"""

from __future__ import annotations

import typer

from services.cli import bench_deploy, bench_drift, bench_families, bench_interference, bench_strategies, console_cmd

app = typer.Typer(help="Run benchmarks and print their results as JSON.", no_args_is_help=True)
app.command("drift")(bench_drift.drift)
app.command("detection")(bench_drift.detection)
app.command("strategies")(bench_strategies.strategies)
app.command("interference")(bench_interference.interference)
app.command("deploy")(bench_deploy.deploy)
app.command("families")(bench_families.families)
app.command("console")(console_cmd.bench)
