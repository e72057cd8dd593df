"""``modelci``: run, inspect and benchmark ModelCI-e from one command line.

Each group lives in its own module and is mounted here, so ``modelci --help`` lists every
command the project has.
"""

from __future__ import annotations

import typer

from services.cli import (
    bench_cmd,
    config_cmd,
    console_cmd,
    demo_cmd,
    infra_cmd,
    model_cmd,
    observability_cmd,
    schemas_cmd,
    up_cmd,
)

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
app.command("up")(up_cmd.up)
app.command("down")(up_cmd.down)
app.command("status")(up_cmd.status)
app.command("demo")(demo_cmd.demo)
app.add_typer(model_cmd.app, name="model")
app.add_typer(console_cmd.app, name="console")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(infra_cmd.app, name="infra")
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(observability_cmd.app, name="observability")
app.add_typer(config_cmd.app, name="config")


def main() -> None:
    app()
