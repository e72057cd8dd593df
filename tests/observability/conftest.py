"""The observability suite's one expensive fixture: the whole loop running and scraped (module scope)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest

from services.common.settings import TritonSettings
from tests.observability.loop import SERVICES, Loop, digits, make_loop, runnable, wait_for


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, apache_kafka, redis_server, triton_server) -> Iterator[Loop]:
    s = triton_server.settings
    triton = TritonSettings(http_url=f"127.0.0.1:{s.triton_http_port}", grpc_url=f"127.0.0.1:{s.triton_grpc_port}",
                            metrics_url=f"http://127.0.0.1:{s.triton_metrics_port}/metrics",
                            model_repository=str(triton_server.model_repository))
    lp = make_loop(tmp_path_factory.mktemp("observability"), apache_kafka.address(), redis_server.address(), triton)
    lp.started_at = time.time()
    lp.prometheus.start()
    try:
        lp.prometheus.add_target("triton", f"127.0.0.1:{s.triton_metrics_port}")
        lp.register()
        for name in SERVICES:
            if runnable(name):
                lp.start(name)
        for name in list(lp.procs):
            wait_for(lambda n=name: lp.up(n), 120, f"{name} scraped by Prometheus", lp, name)
        drive(lp)
        yield lp
    finally:
        for name in list(lp.procs):
            with contextlib.suppress(Exception):
                lp.stop(name)
        with contextlib.suppress(Exception):
            lp.prometheus.stop()
        with contextlib.suppress(Exception):
            from services.deployer.triton_ops import TritonOps

            TritonOps(triton.http_url).unload(lp.model)
        with contextlib.suppress(Exception):
            client = lp.redis.client()
            keys = list(client.scan_iter(match=f"{lp.redis.key_prefix}*", count=1000))
            if keys:
                client.delete(*keys)


def _count(lp: Loop, expr: str) -> float:
    result = lp.prom.instant(expr)
    return sum(float(r["value"][1]) for r in result)


def drive(lp: Loop) -> None:
    """A small drifting workload through the loop, waiting (with deadlines) for each stage."""
    x, y = digits()
    xd, yd = digits(drifted=True)
    m = f'model="{lp.model}"'
    lp.requests(x[:150], y[:150])
    lp.garbage(3)
    wait_for(lambda: _count(lp, f"modelci_inference_predictions_total{{{m}}}") >= 150, 90, "predictions of version 1", lp, "inference")
    wait_for(lambda: _count(lp, "modelci_inference_dead_letters_total") >= 3, 60, "garbage dead-lettered", lp, "inference")
    lp.requests(xd[:300], yd[:300])  # the drift: v1 answers ~10% of the turned digits right
    if runnable("drift"):  # the drift service detects it, then decides on an update after min_samples more samples
        wait_for(lambda: _count(lp, f"modelci_drift_detections_total{{{m}}}") >= 1, 120, "drift detected", lp, "drift")
        lp.requests(xd[850:1100], yd[850:1100])  # the evidence, while version 1 still serves (a new version resets detectors)
        wait_for(lambda: _count(lp, f"modelci_drift_update_requests_total{{{m}}}") >= 1, 120, "an update decision", lp, "drift")
    # An update over known samples too, so the deployment this suite observes does not hang on
    # the drift service's choice of evidence (its own request may come earlier, on fewer samples).
    lp.update(xd[300:600], yd[300:600])
    wait_for(lambda: _count(lp, f"modelci_deployer_deployments_total{{{m}}}") >= 1, 240, "version 2 deployed", lp)
    new_version = f'modelci_inference_predictions_total{{{m}, version!="1"}}'
    for start in (600, 650, 700):  # a scrape apart: rate() needs the new version's histograms to grow between scrapes
        before = _count(lp, new_version)
        lp.requests(xd[start:start + 50], yd[start:start + 50])
        wait_for(lambda b=before: _count(lp, new_version) > b, 90, "predictions of the new version", lp)
    lp.rollback(1)
    wait_for(lambda: _count(lp, f"modelci_deployer_rollbacks_total{{{m}}}") >= 1, 90, "rollback to version 1", lp, "deployer")
    lp.failing_update()
    lp.corrupt_candidate()
    wait_for(lambda: _count(lp, f"modelci_trainer_updates_failed_total{{{m}}}") >= 1, 90, "a failed update", lp, "trainer")
    wait_for(lambda: _count(lp, f"modelci_deployer_rejected_total{{{m}}}") >= 1, 90, "a rejected candidate", lp, "deployer")
    if "console" in lp.procs:
        base = f"http://127.0.0.1:{lp.ports['console']}"
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{base}/login", data={"username": "admin", "password": "wrong"}, timeout=10)
            httpx.get(f"{base}/api/models", timeout=10)
        wait_for(lambda: _count(lp, "modelci_console_events_total") >= 1, 60, "console read CL events", lp, "console")
    lp.requests(x[750:850], y[750:850])
    wait_for(lambda: _count(lp, f"modelci_inference_predictions_total{{{m}}}") >= 700, 90, "predictions after the rollback", lp, "inference")
