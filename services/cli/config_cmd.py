"""``modelci config``: what can be configured, and how."""

from __future__ import annotations

import typer

from services.common.settings_docs import settings_markdown

app = typer.Typer(help="Show the MODELCI_* settings of every service.", no_args_is_help=True)


@app.command()
def docs() -> None:
    """Print every MODELCI_* environment variable with its default and meaning, as Markdown."""
    typer.echo(settings_markdown())
