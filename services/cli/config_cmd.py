"""``modelci config``: what can be configured, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.common.settings_docs import readme_with_settings, settings_markdown


def settings_classes() -> list[type]:
    """Every settings block, in the order the README shows them (imported here, on demand:
    the drift settings pull in River, a second at start-up that other commands need not pay)."""
    from infra.local.settings import InfraSettings
    from services.common.settings import KafkaSettings, ObservabilitySettings, RedisSettings, TritonSettings
    from services.console.settings import ConsoleSettings
    from services.deployer.settings import DeployerSettings
    from services.drift.settings import DriftSettings
    from services.inference.settings import InferenceSettings
    from services.trainer.settings import InterferenceSettings, TrainerSettings

    return [
        KafkaSettings, RedisSettings, TritonSettings, ObservabilitySettings, InfraSettings, DeployerSettings,
        ConsoleSettings, TrainerSettings, InterferenceSettings, InferenceSettings, DriftSettings,
    ]

app = typer.Typer(help="Show the MODELCI_* settings of every service.", no_args_is_help=True)


@app.command()
def docs(
    readme: Annotated[Path | None, typer.Option(help="Rewrite the settings section of this README instead of printing.")] = None,
) -> None:
    """Print every MODELCI_* environment variable with its default and meaning, as Markdown."""
    if readme is None:
        typer.echo(settings_markdown(settings_classes()))
        return
    readme.write_text(readme_with_settings(readme.read_text(), settings_classes()))
    typer.echo(f"updated the settings section of {readme}")
