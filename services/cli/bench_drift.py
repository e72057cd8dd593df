"""``modelci bench drift`` and ``modelci bench detection``: the drift service's two benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def drift(
    events: int = typer.Option(500_000, "--events", "-n", help="Prediction+feedback pairs to publish (N); 2N events in all (a million by default)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    batch: int = typer.Option(100, help="Events per Kafka record, as the inference service and client library batch them."),
    models: int = typer.Option(4, help="Models the pairs are spread over (keys, hence partitions)."),
    cpu: int = typer.Option(-1, help="CPU both measured processes are pinned to (-1: the last one)."),
    profile: bool = typer.Option(False, "--profile", help="Run the drift worker under pyinstrument; report in reports/."),
    cpu_profile: bool = typer.Option(False, "--cpu-profile", help="Run it under cProfile timed by CPU (reports/drift-profile.pstats)."),
    out_dir: Path = typer.Option(Path("reports"), help="Folder for drift-bench.json, the worker log and profiles."),
) -> None:
    """Events/s through a drift worker vs a bare confluent-kafka consumer decoding with the
    same compiled reader (``ratio``; decoding with the serde: ``ratio_serde``), on a drifting
    workload of the demo's width, with the CPU per event of the worker, Redis and the broker.

    Uses MODELCI_KAFKA_BOOTSTRAP_SERVERS / MODELCI_REDIS_URL when set, else starts its own
    Apache Kafka and Redis on free ports.
    """
    from benchmarks.drift.throughput import run

    mode: bool | str = "cprofile" if cpu_profile else profile
    report = run(events, batch=batch, models=models, cpu=None if cpu < 0 else cpu, profile=mode, reports=out_dir)
    if as_json:
        typer.echo(json.dumps(report))
        return
    cpu_use = report["cpu_us_per_event"]
    typer.echo(
        f"{report['events']} events: drift {report['drift_eps']}/s, bare consumer with the same reader {report['raw_scan_eps']}/s: "
        f"ratio {report['ratio']}; with the serde {report['raw_consumer_eps']}/s: ratio_serde {report['ratio_serde']}\n"
        f"CPU µs/event: service {cpu_use['service']}, bare consumer {cpu_use['bare_consumer_scan']}: cpu_ratio {report['cpu_ratio']}; "
        f"{report['drift_events']} drifts detected, {report['update_requests']} update decisions"
    )


def detection(
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON only."),
    runs: int = typer.Option(16, help="Streams per SEA variant and covariate family (Agrawal: 9, one per function)."),
    pre: int = typer.Option(30_000, help="Events before each change (SEA and covariate streams)."),
    post: int = typer.Option(3_000, help="Events after each change; a detection later than this is a miss."),
    split: str = typer.Option("test", help="test: streams from seeds nothing was tuned on, with gradual and recurring drift; "
                                             "tune: the streams the shipped parameters were chosen on."),
    out_dir: Path = typer.Option(Path("reports"), help="Folder for drift-detection.json."),
) -> None:
    """Detection share, median delay and false alarms per 100k events of every shipped detector,
    per stream family (a re-fire after a detection counts as a false alarm)."""
    from benchmarks.drift.detection import run

    report = run(runs=runs, pre=pre, post=post, split=split)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "drift-detection.json").write_text(json.dumps(report, indent=2))
    if as_json:
        typer.echo(json.dumps(report))
        return
    for row in report["detectors"]:
        typer.echo(
            f"{row['name']:<26} {row['signal']:<10} detected {row['detected_share']:.3f}  median delay "
            f"{row['median_delay_events']}  false alarms/100k {row['false_alarms_per_100k']}; goal missed in: "
            f"{', '.join(row['families_missing_goal']) or 'none'}" + ("  (default)" if row["name"] == report["default"] else "")
        )
