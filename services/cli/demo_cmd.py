"""``modelci demo``: the whole continual-learning loop on the embedded default, narrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infra.local.embedded import EmbeddedStack
from services.common.errors import ModelCIError
from services.demo.config import DemoConfig

console = Console(stderr=True)


def demo(
    start: Annotated[bool, typer.Option("--start", help="Start the embedded default first (and stop it after, unless --keep).")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="With --start: leave the stack running afterwards.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    report: Annotated[Path, typer.Option(help="Folder for report.json, accuracy.png and latency.png.")] = Path("reports/demo"),
    rate: Annotated[float, typer.Option(help="Requests per second.")] = DemoConfig.rate,
    warmup: Annotated[float, typer.Option(help="Seconds on the first concept before the drift.")] = DemoConfig.warmup_s,
    stream: Annotated[str, typer.Option(help="Drift stream from the model factory.")] = DemoConfig.stream,
    seed: Annotated[int, typer.Option(help="Seed of the stream, the model and the traffic.")] = DemoConfig.seed,
    architecture: Annotated[str, typer.Option(help="Model factory 'package.module:function' taking input_dim and num_classes "
                                                   "(default: the demo's MLP), e.g. strategies.models:make_tabular.")] = "",
) -> None:
    """Train a model on one concept, serve it, drift, and watch ModelCI-e detect, retrain, validate and redeploy.

    Runs against a running `modelci up`; `--start` starts one (the README's `make demo` does).
    """
    from services.demo.scenario import Narrator, run_demo

    stack = EmbeddedStack()
    started = False
    up_seconds = None
    try:
        if stack.recorded() is None:
            if not start:
                console.print("[red]error:[/red] no ModelCI-e stack is running: run `modelci up` in another shell, or `modelci demo --start`")
                raise typer.Exit(1)
            console.print("starting the embedded default (broker, Redis, Triton, Prometheus, services)…")
            _, up_seconds = stack.up()
            started = True
            console.print(f"healthy in {up_seconds:.1f} s")
        config = DemoConfig(rate=rate, warmup_s=warmup, stream=stream, seed=seed, architecture=architecture)
        summary = run_demo(config, stack, Narrator(console.print), report, up_seconds)
    except ModelCIError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        if started and not keep:
            stack.down()
            console.print("stack stopped")
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print_json(json.dumps(summary))
