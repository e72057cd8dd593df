"""``modelci model``: register models and inspect or steer their versions.

Reads go straight to the registry in Redis; actions that change what serves (approve, reject,
rollback) are published as commands on ``cl.commands`` and executed by the deployer, so there
is one writer of serving state and every change leaves an event trail. Connection settings come
from the ``MODELCI_*`` environment (see ``modelci config docs``), and where none is set, from the
stack `modelci up` recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.cli.running_stack import use_running_stack
from services.common.errors import ModelCIError

app = typer.Typer(help="Register models; list versions; approve, reject or roll back.", no_args_is_help=True,
                  callback=use_running_stack)
console = Console()

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _settings():
    from services.deployer.settings import DeployerSettings

    return DeployerSettings()


def _registry(settings):
    from services.common.registry import ModelRegistry

    return ModelRegistry(settings.redis.client(), settings.redis.key_prefix)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Model name (Triton model name).")],
    artifact: Annotated[Path, typer.Option(help="TorchScript file whose output is class probabilities.", exists=True, dir_okay=False)],
    input_shape: Annotated[str, typer.Option(help="Input shape without the batch dimension, e.g. 64 or 3,32,32.")],
    classes: Annotated[str, typer.Option(help="Comma-separated class names, e.g. 0,1,2.")],
    strategy: Annotated[str, typer.Option(help="CL strategy the trainer uses for this model.")] = "replay",
    hyperparameters: Annotated[str, typer.Option(help="Strategy hyperparameters as JSON.")] = "{}",
    policy: Annotated[str, typer.Option(help="Deployment policy: key=value,... or JSON (see docs/deployer.md).")] = "",
    as_json: AsJson = False,
) -> None:
    """Store the artifact, write both Triton configs, publish and load version 1, confirm, mark it serving."""
    from services.common.artifacts import FileArtifactStore
    from services.deployer.policy import parse_policy_text
    from services.deployer.register import register_model
    from services.deployer.triton_ops import TritonOps

    settings = _settings()
    try:
        record = register_model(
            _registry(settings),
            FileArtifactStore(settings.artifact_root),
            TritonOps(settings.triton.http_url, settings.triton_retries, settings.triton_backoff_s, settings.load_timeout_s,
                      grpc_url=settings.triton.grpc_url),
            Path(settings.triton.model_repository),
            name,
            artifact.read_bytes(),
            [int(d) for d in input_shape.split(",")],
            [c.strip() for c in classes.split(",") if c.strip()],
            strategy=strategy,
            hyperparameters=json.loads(hyperparameters),
            policy=parse_policy_text(policy),
        )
    except (ModelCIError, ValueError) as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(asdict(record)))
    else:
        console.print(f"{name} v{record.version} serving (artifact {record.artifact_sha256[:12]}…)")


@app.command("list")
def list_models(as_json: AsJson = False) -> None:
    """Models with their serving version and policy."""
    models = _registry(_settings()).list_models()
    if as_json:
        print(json.dumps([asdict(m) for m in models]))
        return
    table = Table("model", "serving", "previous", "input", "classes", "strategy", "promotion")
    for m in models:
        table.add_row(m.name, str(m.serving_version), str(m.previous_version), str(m.input_shape), str(m.num_classes),
                      m.strategy, str(m.policy.get("promotion", "auto")))
    console.print(table)


@app.command()
def versions(name: str, as_json: AsJson = False) -> None:
    """Versions of a model: status, base version, hash, reasons, history length."""
    registry = _registry(_settings())
    records = registry.list_versions(name)
    if as_json:
        print(json.dumps([asdict(v) for v in records]))
        return
    table = Table("version", "status", "base", "strategy", "sha256", "reasons", "changes")
    for v in records:
        reasons = ",".join(v.report.get("reasons", [])) if isinstance(v.report, dict) else ""
        table.add_row(str(v.version), str(v.status), str(v.base_version), str(v.strategy), (v.artifact_sha256 or "")[:12],
                      reasons, str(len(v.history)))
    console.print(table)


def _command(name: str, action: str, version: int | None, actor: str) -> None:
    from services.common import kafka, topics
    from services.common.events import Command
    from services.common.serde import encode_event

    settings = _settings()
    cmd = Command(model=name, action=action, actor=actor, version=version)
    prod = kafka.producer(settings.kafka)
    prod.produce(settings.kafka.topic(topics.COMMANDS), key=name.encode(), value=encode_event(cmd))
    try:
        kafka.flush(prod, 30)
    except ModelCIError as exc:
        _fail(exc)
    console.print(f"{action} {name} v{version if version is not None else '(previous)'} sent as command {cmd.event_id}")


Actor = Annotated[str, typer.Option(help="Who issues the command (recorded in the history).")]


@app.command()
def approve(name: str, version: int, actor: Actor = "cli") -> None:
    """Approve a held version: the deployer publishes it."""
    _command(name, "approve", version, actor)


@app.command()
def reject(name: str, version: int, actor: Actor = "cli") -> None:
    """Reject a held version."""
    _command(name, "reject", version, actor)


@app.command()
def rollback(
    name: str,
    version: Annotated[int | None, typer.Option(help="Version to restore (default: the previous one).")] = None,
    actor: Actor = "cli",
) -> None:
    """Roll the model back to a previous version."""
    _command(name, "rollback", version, actor)
