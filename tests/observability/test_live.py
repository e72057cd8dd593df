"""Against the running loop: every recording rule and every dashboard query returns data from a
real Prometheus, Triton's metric types are what the rules assume, and alerts fire when provoked."""

from __future__ import annotations

import re
import time
import warnings

import httpx
import yaml

from infra.grafana.generate import queries, to_promql
from infra.local.process import wait_until
from services.common.errors import InfraError
from tests.observability.loop import Loop, runnable, wait_for
from tests.observability.promql import has_data, rules

TRITON_COUNTERS = ("nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count", "nv_inference_exec_count",
                   "nv_inference_request_duration_us", "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us")
RECORDED = {r["record"]: r["expr"] for r in rules() if "record" in r}


def sources(expr: str) -> set[str]:
    """Raw metric names an expression reads, through recording rules."""
    names: set[str] = set()
    for name in re.findall(r"\b(modelci:[a-z0-9_:]+|modelci_[a-z0-9_]+|nv_[a-z0-9_]+|up)\b", expr):
        names |= sources(RECORDED[name]) if name in RECORDED else {name}
    return names


def owner(metric: str) -> str:
    return "triton" if metric.startswith("nv_") else metric.split("_")[1] if metric.startswith("modelci_") else "prometheus"


def expected(expr: str) -> bool:
    """False when the query reads a service that does not run here (not written yet, or skipped)."""
    services = {owner(m) for m in sources(expr)} | set(re.findall(r'service="(\w+)"', expr))
    return all(runnable(s) for s in services - {"triton", "prometheus"})


def missing(loop: Loop, exprs: dict[str, str]) -> list[str]:
    end = time.time()
    return [where for where, expr in exprs.items() if expected(expr) and not has_data(loop.prom.range(expr, loop.started_at, end))]


def test_triton_exports_the_counters_the_rules_read(loop: Loop) -> None:
    text = httpx.get(loop.triton.metrics_url, timeout=10).text
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name in TRITON_COUNTERS:
        assert types.get(name) == "counter", (name, types.get(name))  # cumulative: no quantiles, hence the client histogram


def assert_all_have_data(loop: Loop, exprs: dict[str, str]) -> None:
    """Polls (rules are evaluated every second) until each query has a number somewhere in the run."""
    left_out = sorted(where for where, expr in exprs.items() if not expected(expr))
    if left_out:
        warnings.warn(f"not asserted (their service does not run here): {left_out}", stacklevel=2)
    try:
        wait_until(lambda: not missing(loop, exprs), 60, "every query has data")
    except InfraError:
        raise AssertionError(f"without data: {missing(loop, exprs)}") from None


def test_every_recording_rule_returns_data(loop: Loop) -> None:
    assert len(RECORDED) >= 25
    assert_all_have_data(loop, {name: name for name in RECORDED})


def test_rules_evaluate_without_errors(loop: Loop) -> None:
    """A rule can parse and still fail at run time (e.g. many-to-many matching): Prometheus says so here."""
    groups = loop.prom.rule_groups()
    assert {g["name"] for g in groups} >= {"modelci.throughput", "modelci.loop", "modelci.triton", "modelci.alerts"}
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert broken == []
    for g in groups:  # the figure in docs/observability.md (run with -s)
        print(f"rule group {g['name']}: {len(g['rules'])} rules, last evaluation {g['evaluationTime'] * 1000:.2f} ms")


def test_every_dashboard_query_returns_data(loop: Loop) -> None:
    exprs = {f"{q.board} {q.where}": to_promql(q.expr) for q in queries()}
    assert len(exprs) >= 60
    assert_all_have_data(loop, exprs)


def test_variables_list_the_model_and_its_versions(loop: Loop) -> None:
    """The overview's own variable queries over the dashboard's time range, as Grafana asks: version 2
    served for a while, then was rolled back."""
    variables = {q.where: q.expr for q in queries() if q.board == "overview.json" and q.where.startswith("variable")}

    def values(name: str, label: str, model: str = ".*") -> set[str]:
        expr = to_promql(variables[f"variable {name!r}"], {"model": model})
        return {r["metric"][label] for r in loop.prom.range(expr, loop.started_at, time.time())}

    assert loop.model in values("model", "model")
    assert {"1", "2"} <= values("version", "version", loop.model)


def test_p99_per_model_and_version_returns_data(loop: Loop) -> None:
    """What an operator asks: p99 latency of each version of a model. Version 1 answered before the
    switch and after the rollback, version 2 in between; each has its own p99, of Triton calls and
    end to end, on the real Prometheus from the real inference service's histograms."""
    def versions(rule: str) -> set[str]:
        result = loop.prom.range(f'{rule}{{model="{loop.model}"}}', loop.started_at, time.time())
        return {r["metric"].get("version", "") for r in result if has_data([r])}

    answered = {r["metric"]["version"] for r in loop.prom.instant(f'modelci_inference_predictions_total{{model="{loop.model}"}}')}
    assert "1" in answered and len(answered) >= 2, answered
    for rule in ("modelci:triton_latency_seconds:p99_by_version", "modelci:request_latency_seconds:p99_by_version"):
        wait_for(lambda r=rule: "1" in versions(r) and len(versions(r)) >= 2, 60, f"{rule} for version 1 and the new one",
                 loop, "inference")
        assert versions(rule) <= answered, f"{rule}: only versions that answered, none without a version"


def _firing(loop: Loop, alert: str, **labels: str) -> bool:
    return any(a["labels"]["alertname"] == alert and a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
               for a in loop.prom.alerts())


def test_rollback_alert_fires(loop: Loop) -> None:
    """The real rule (for: 0m) on the real rollback the workload commanded."""
    wait_for(lambda: _firing(loop, "ModelCIRollback", model=loop.model, trigger="manual"), 60, "ModelCIRollback firing", loop)


def test_updates_failing_alert_fires(loop: Loop) -> None:
    """The real rule on the update the trainer failed (a request on a base version that does not exist)."""
    wait_for(lambda: _firing(loop, "ModelCIUpdatesFailing", model=loop.model), 60, "ModelCIUpdatesFailing firing", loop)


def test_dead_letters_and_service_down_alerts_fire(loop: Loop) -> None:
    """The real expressions with a short ``for`` (a test override), provoked for real: garbage is
    published to the request topic, then a service is stopped."""
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    override = {"groups": [{"name": "observability-test", "rules": [
        {**alerts["ModelCIServiceDown"], "alert": "TestServiceDown", "for": "0s"},
        {**alerts["ModelCIDeadLettersGrowing"], "alert": "TestDeadLettersGrowing", "for": "0s"},
    ]}]}
    (loop.prometheus.rules_dir / "zz-test-override.yml").write_text(yaml.safe_dump(override))
    loop.prom.reload()
    before = sum(float(r["value"][1]) for r in loop.prom.instant("modelci_inference_dead_letters_total"))
    loop.garbage(2)  # fresh dead letters, whatever the time the loop took
    wait_for(lambda: sum(float(r["value"][1]) for r in loop.prom.instant("modelci_inference_dead_letters_total")) >= before + 2,
             60, "fresh garbage dead-lettered", loop, "inference")
    wait_for(lambda: _firing(loop, "TestDeadLettersGrowing", service="inference"), 60, "dead-letter alert firing", loop)
    victim = "trainer" if "trainer" in loop.procs else next(iter(loop.procs))
    assert not _firing(loop, "TestServiceDown", service=victim)
    loop.stop(victim)
    wait_for(lambda: _firing(loop, "TestServiceDown", service=victim), 60, f"service-down alert for {victim}", loop)
