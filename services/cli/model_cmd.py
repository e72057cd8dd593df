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
    input_shape: Annotated[str, typer.Option(help="Input shape without the batch dimension, e.g. 64 or 3,32,32.")],
    classes: Annotated[str, typer.Option(help="Comma-separated class names, e.g. 0,1,2.")],
    datatype: Annotated[str, typer.Option(help="Input datatype: FP32 or FP16 (images, tabular), INT64 or INT32 (token ids padded to the shape's length).")] = "FP32",
    factory: Annotated[str | None, typer.Option(help="The model's architecture: 'package.module:function' building the "
                                                     "torch.nn.Module (or a 'modelci.models' entry point). Must be importable by the trainer.")] = None,
    factory_kwargs: Annotated[str, typer.Option(help="Keyword arguments of the factory, as JSON.")] = "{}",
    weights: Annotated[Path | None, typer.Option(help="state_dict of the module (torch.save), read with weights_only=True.",
                                                 exists=True, dir_okay=False)] = None,
    output: Annotated[str, typer.Option(help="What the module returns: logits (a softmax is added for serving) or probabilities.")] = "logits",
    artifact: Annotated[Path | None, typer.Option(help="TorchScript file to serve as version 1 (class probabilities). Alone, only the "
                                                       "built-in MLP can be updated; with --factory, weights are read from it if --weights is not given.",
                                                  exists=True, dir_okay=False)] = None,
    strategy: Annotated[str, typer.Option(help="CL strategy the trainer uses for this model.")] = "replay",
    hyperparameters: Annotated[str, typer.Option(help="Strategy hyperparameters as JSON.")] = "{}",
    policy: Annotated[str, typer.Option(help="Deployment policy: key=value,... or JSON (see docs/deployer.md).")] = "",
    as_json: AsJson = False,
) -> None:
    """Prove the model can be trained, exported and served; store it, publish and load version 1, mark it serving.

    Give the architecture (--factory with --weights) so the trainer can update the model the team serves, or a TorchScript --artifact of the built-in MLP (docs/models.md).
    """
    from services.common.artifacts import FileArtifactStore
    from services.deployer.policy import parse_policy_text
    from services.deployer.register import register_model
    from services.deployer.triton_ops import TritonOps
    from strategies.architecture import Architecture

    if factory is None and artifact is None:
        _fail(ValueError("give --factory (with --weights or --artifact) or --artifact"))
    if weights is not None and factory is None:
        _fail(ValueError("--weights needs --factory: the architecture they belong to"))
    settings = _settings()
    try:
        arch = Architecture(factory, json.loads(factory_kwargs), output) if factory else None  # type: ignore[arg-type]
        record = register_model(
            _registry(settings),
            FileArtifactStore(settings.artifact_root),
            TritonOps(settings.triton.http_url, settings.triton_retries, settings.triton_backoff_s, settings.load_timeout_s,
                      grpc_url=settings.triton.grpc_url),
            Path(settings.triton.model_repository),
            name,
            artifact.read_bytes() if artifact is not None else None,
            [int(d) for d in input_shape.split(",")],
            [c.strip() for c in classes.split(",") if c.strip()],
            strategy=strategy,
            hyperparameters=json.loads(hyperparameters),
            policy=parse_policy_text(policy),
            architecture=arch,
            weights=weights.read_bytes() if weights is not None else None,
            datatype=datatype,
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
        table.add_row(m.name, str(m.serving_version), str(m.previous_version), f"{m.datatype} {m.input_shape}", str(m.num_classes),
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
