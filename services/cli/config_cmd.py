"""``modelci config``: what can be configured, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.common.settings_docs import readme_with_settings, settings_markdown

app = typer.Typer(help="Show the MODELCI_* settings of every service.", no_args_is_help=True)


@app.command()
def docs(
    readme: Annotated[Path | None, typer.Option(help="Rewrite the settings section of this README instead of printing.")] = None,
) -> None:
    """Print every MODELCI_* environment variable with its default and meaning, as Markdown."""
    if readme is None:
        typer.echo(settings_markdown())
        return
    readme.write_text(readme_with_settings(readme.read_text()))
    typer.echo(f"updated the settings section of {readme}")
