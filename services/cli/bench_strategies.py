"""``modelci bench strategies``: CL strategies over a drift stream, as JSON and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``replay.mem_size=500`` / ``*.epochs=5`` -> {"replay": {"mem_size": 500}, "*": {...}}."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        strategy, dot, field = key.partition(".")
        if not sep or not dot or not strategy or not field:
            raise typer.BadParameter(f"expected STRATEGY.FIELD=VALUE, got {pair!r}", param_hint="--set")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(strategy, {})[field] = value
    return out


def strategies(
    stream: str = typer.Option("recurring", help="Drift stream: recurring, digits-rotations, digits-noise, digits-prior, sea, agrawal, "
                                                  "digits-image (1x32x32 images), text-topics (INT64 token ids), "
                                                  "or your own 'package.module:function' (called with the seed, returns a DriftStream)."),
    model: str = typer.Option("", help="Your model: 'package.module:function' returning logits, called with num_classes, input_shape "
                                       "when it takes one (else input_dim) and the stream's vocab_size when it takes one "
                                       "(default: the built-in MLP of --hidden units; make_text on a token-id stream)."),
    model_kwargs: str = typer.Option("{}", help="More keyword arguments of --model, as JSON."),
    names: str = typer.Option("", "--strategies", help="Comma-separated strategies; default: all."),
    seeds: str = typer.Option("0,1,2,3,4", "--seeds", help="Comma-separated seeds of the stream, the initial model and every "
                                                          "update; each figure is the mean over them, with its standard deviation."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON only."),
    plot: Path | None = typer.Option(None, help="PNG to write (default: reports/strategies_STREAM.png)."),
    hidden: int = typer.Option(128, help="Hidden units of the built-in MLP every strategy starts from (without --model)."),
    size: int | None = typer.Option(None, help="Training samples per update (default: the stream's own)."),
    overrides: list[str] = typer.Option([], "--set", help="Hyperparameter override STRATEGY.FIELD=VALUE ('*' for all); repeatable."),
    isolate: bool = typer.Option(True, help="Run each strategy in its own process (own peak memory)."),
    threads: int = typer.Option(1, help="Torch threads per strategy."),
) -> None:
    """Replay a stream through each strategy: accuracy per concept after each update,
    average accuracy, forgetting, backward transfer, update time, peak memory."""
    from benchmarks.strategies.run import BenchConfig, run_seeds
    from benchmarks.strategies.plot import plot_bench
    from strategies.errors import StrategyError

    config = BenchConfig(
        stream=stream,
        strategies=[n.strip() for n in names.split(",") if n.strip()] or None,
        hidden=hidden,
        train_per_experience=size,
        hyperparameters=_overrides(overrides),
        isolate=isolate,
        threads=threads,
        model=model,
        model_kwargs=json.loads(model_kwargs),
    )
    try:
        chosen = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {seeds!r}", param_hint="--seeds") from None
    try:
        report = run_seeds(config, chosen)
    except StrategyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    path = plot_bench(report, plot or Path("reports") / f"strategies_{report['stream']}.png")
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"stream {report['stream']} ({' -> '.join(report['order'])}), seeds {', '.join(map(str, chosen))} (mean ± std)")
    typer.echo(f"{'strategy':10} {'avg acc':>14} {'forget':>7} {'1st fgt':>7} {'bwt':>7} {'update s':>9} {'cpu s':>6} {'peak MB':>8}")
    for r in report["strategies"]:
        typer.echo(
            f"{r['name']:10} {r['average_accuracy']:7.3f} ± {r['average_accuracy_std']:.3f} {r['forgetting']:7.3f} {r['first_concept_forgetting']:7.3f} "
            f"{r['bwt']:7.3f} {r['update_seconds']:9.2f} {r['update_cpu_seconds']:6.2f} {r['peak_memory_mb']:8.1f}"
        )
    typer.echo(f"default {report['default']}, oracle {report['oracle']}; plot in {path}")
