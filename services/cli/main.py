"""``modelci``: run, inspect and benchmark ModelCI-e from one command line.

Each group lives in its own module and is mounted here, so ``modelci --help`` lists every
command the project has.
"""

from __future__ import annotations

import typer

from services.cli import bench_cmd, config_cmd, demo_cmd, infra_cmd, schemas_cmd

app = typer.Typer(
    name="modelci",
    help=(
        "ModelCI-e: continual learning for deployed models. Watches live traffic and feedback, "
        "detects drift, updates models online, validates them and rolls them out to Triton."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(infra_cmd.app, name="infra")
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(config_cmd.app, name="config")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(__import__("services.cli.model_cmd", fromlist=["app"]).app, name="model")
app.add_typer(__import__("services.cli.observability_cmd", fromlist=["app"]).app, name="observability")
app.add_typer(__import__("services.cli.console_cmd", fromlist=["app"]).app, name="console")
app.command("demo")(demo_cmd.demo)


def main() -> None:
    app()
