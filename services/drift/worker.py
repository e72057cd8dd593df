"""Composition root of a drift worker: settings, topics, metrics endpoint, Faust worker."""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import tempfile

from services.common.kafka import ensure_topics
from services.common.metrics import serve
from services.common.topics import CANDIDATES, DRIFT, FEEDBACK, PREDICTIONS, SAMPLES, UPDATES, dlq
from services.drift import scan
from services.drift.app import create_app
from services.drift.metrics import DriftMetrics
from services.drift.settings import DriftSettings

_log = logging.getLogger("modelci.drift")


def topic_plan(settings: DriftSettings) -> dict[str, int]:
    """Topics the service reads and writes, with the partitions they are created with."""
    n = settings.partitions
    plan = {name: n for name in (PREDICTIONS, FEEDBACK, SAMPLES, DRIFT, UPDATES, CANDIDATES)}
    plan.update({dlq(name): 1 for name in (PREDICTIONS, FEEDBACK, CANDIDATES)})
    return plan


def main(argv: list[str] | None = None) -> None:
    settings = DriftSettings()
    level = settings.observability.log_level.upper()
    # Compile the hot path's kernels (or load them from numba's cache) before joining the
    # consumer group: compiling takes seconds with a cold cache, and would hold the event loop
    # (and Faust's heartbeats) if it happened on the first records.
    scan.warm()
    ensure_topics(settings.kafka, topic_plan(settings))
    metrics = DriftMetrics()
    port = serve(metrics.registry, settings.observability.metrics_host, settings.observability.metrics_port)
    print(f"drift metrics on http://{settings.observability.metrics_host}:{port}/metrics", file=sys.stderr, flush=True)
    own_datadir = not settings.datadir
    if own_datadir:
        settings.datadir = tempfile.mkdtemp(prefix="modelci-drift-")
    app = create_app(settings, metrics)
    faust_level = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error", "CRITICAL": "crit"}.get(level, "info")
    args = ["--loop", settings.loop, "worker", "-l", faust_level]
    if settings.web_port is None:
        args.append("--without-web")
    sys.argv = [sys.argv[0] or "modelci-drift", *args, *(argv or [])]
    # Decoding allocates a dict per event; with the default thresholds the cyclic collector
    # ran so often that decoding took ~50% longer in the worker than alone (measured). The
    # events hold no cycles (reference counting frees them), so collect far less often, and
    # keep everything created at start-up out of the collector's scans.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    sys.setswitchinterval(settings.switch_interval_s)
    try:
        app.main()
    finally:
        if own_datadir:
            shutil.rmtree(settings.datadir, ignore_errors=True)


if __name__ == "__main__":
    main()
