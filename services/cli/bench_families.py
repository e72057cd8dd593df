"""``modelci bench families``: register → serve → drift → update → deploy for each model family."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def families(
    names: str = typer.Option("", "--families", help="Comma-separated family names or kinds (image, text, tabular); default: all."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds of the streams, the models and the traffic; each figure is the mean over them, with its standard deviation."),
    out: Path = typer.Option(Path("reports/families"), help="Folder for families.json, families.png and each run's demo report."),
    start: bool = typer.Option(False, "--start", help="Start the embedded default for each run and stop it after (a fresh stack per family and seed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Per family (the demo MLP, a BatchNorm/Dropout tabular net, a narrow ResNet-18 on 1×32×32
    images, an EmbeddingBag text classifier on INT64 token ids): update seconds, drift onset →
    new version serving, accuracy before / after the drift / recovered, serving p50/p99 through
    the inference service, peak memory of the stack; each run is the demo's scenario at its
    default rate on a running `modelci up` (or `--start`)."""
    from benchmarks.families.run import run_families, write
    from infra.local.embedded import EmbeddedStack
    from services.demo.scenario import Narrator

    stack = EmbeddedStack()
    if stack.recorded() is None and not start:
        console.print("[red]error:[/red] no ModelCI-e stack is running: run `modelci up`, or pass --start")
        raise typer.Exit(1)
    if stack.recorded() is not None and start:
        console.print("[red]error:[/red] --start runs each family on a stack of its own, but one is running: `modelci down` first")
        raise typer.Exit(1)
    try:
        chosen = [n.strip() for n in names.split(",") if n.strip()] or None
        result = run_families(stack, chosen, out, [int(x) for x in seeds.split(",") if x.strip()], Narrator(console.print), fresh=start)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    files = write(result, out)
    console.print(f"written: {', '.join(map(str, files))}")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        console.print_json(json.dumps(result))
