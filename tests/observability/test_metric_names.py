"""Every metric the rules and dashboards read is one a service defines (catches a rename at once,
without running anything): the single list of names this project relies on is ``metric_names()``."""

from __future__ import annotations

import re

from infra.grafana.generate import queries
from tests.observability.loop import runnable
from tests.observability.promql import REPO, rules

SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")
TRITON = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count", "nv_inference_exec_count",
          "nv_inference_request_duration_us", "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us",
          "nv_inference_pending_request_count"}


def metric_names() -> set[str]:
    exprs = [r["expr"] for r in rules()] + [q.expr for q in queries()]
    return {name for e in exprs for name in re.findall(r"\b(modelci_[a-z0-9_]+|nv_[a-z0-9_]+)\b", e)}


def defined_in(service: str) -> str:
    return "\n".join(p.read_text() for p in (REPO / "services" / service).rglob("*.py"))


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_service_metric_read_is_defined_by_its_service() -> None:
    undefined = []
    for name in sorted(metric_names()):
        if name.startswith("nv_"):
            assert name in TRITON, f"{name}: not a Triton 2.51 metric this project checked"
            continue
        service = name.split("_")[1]
        if not runnable(service):
            continue  # the service is not written yet; test_live says so too
        source = defined_in(service)
        if f'"{base(name)}"' not in source and f'"{name}"' not in source:
            undefined.append(name)
    assert undefined == [], f"read by rules/dashboards but defined by no service: {undefined}"


def test_names_cover_every_service_that_exports_metrics() -> None:
    services = {n.split("_")[1] for n in metric_names() if n.startswith("modelci_")}
    assert {"inference", "trainer", "deployer", "console"} <= services
