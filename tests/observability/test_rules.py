"""The rule files are valid, their alerts fire on the series they are meant for, and every name
the dashboards and alerts read is recorded by some rule."""

from __future__ import annotations

import re

import yaml

from infra.grafana.generate import queries
from infra.grafana.kit import NOT_STAGING
from services.deployer.gate import STAGING_SUFFIX
from tests.observability.promql import REPO, promtool, rule_files, rules


def test_promtool_check_rules_passes() -> None:
    done = promtool("check", "rules", *map(str, rule_files()))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(rule_files()) >= 2


def test_alerts_fire_as_specified_by_promtool_unit_tests() -> None:
    """Synthetic series in, expected alerts (labels, annotations, timing) out: see alerts_test.yml."""
    done = promtool("test", "rules", "tests/observability/alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_the_issue_asks_for_exist() -> None:
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    for name in ("ModelCIServiceDown", "ModelCIConsumerLagGrowing", "ModelCIDeadLettersGrowing", "ModelCIUpdatesFailing",
                 "ModelCIRollback", "ModelCILiveAccuracyLow", "ModelCITritonFailures", "ModelCITritonLatencyHigh"):
        assert name in alerts, name
        assert alerts[name]["labels"]["severity"] in ("warning", "critical")
        assert alerts[name]["annotations"]["summary"]


def test_every_recorded_name_used_is_recorded() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    used = {name for q in queries() for name in re.findall(r"modelci:[a-z0-9_:]+", q.expr)}
    used |= {name for r in rules() for name in re.findall(r"modelci:[a-z0-9_:]+", r["expr"])}
    assert used - recorded == set(), f"read but never recorded: {sorted(used - recorded)}"


def test_every_read_of_tritons_own_series_leaves_the_staging_models_out() -> None:
    """The gate's ``<model>__staging`` probes are counted by Triton like any model: a rule or panel
    reading ``nv_*`` without the matcher would show them as a served model (or fire on them)."""
    assert NOT_STAGING == f'model!~".*{STAGING_SUFFIX}"'
    exprs = [r["expr"] for r in rules()] + [q.expr for q in queries()]
    reads = [m.group(0) for e in exprs for m in re.finditer(r"\bnv_[a-z0-9_]+(\{[^}]*\})?", e)]
    assert len(reads) >= 15
    leaking = [read for read in reads if NOT_STAGING not in read]
    assert leaking == [], f"reads Triton's per-model series without {NOT_STAGING}: {leaking}"


def test_compose_config_scrapes_every_service_and_triton_and_loads_the_rules(tmp_path) -> None:
    compose = yaml.safe_load((REPO / "infra/prometheus/prometheus.compose.yml").read_text())
    jobs = {job["job_name"]: job for job in compose["scrape_configs"]}
    for service in ("inference", "drift", "trainer", "deployer", "console"):
        sd = jobs[service]["dns_sd_configs"][0]
        assert sd["names"] == [service] and sd["port"] == (8080 if service == "console" else 9400)
        assert {"target_label": "service", "replacement": service} in jobs[service]["relabel_configs"]
    assert jobs["triton"]["static_configs"][0]["targets"] == ["triton:8002"]
    assert compose["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    # promtool checks the whole config, rules included, with the rules folder where compose mounts it
    (tmp_path / "rules").mkdir()
    for path in rule_files():
        (tmp_path / "rules" / path.name).write_text(path.read_text())
    config = tmp_path / "prometheus.yml"
    config.write_text((REPO / "infra/prometheus/prometheus.compose.yml").read_text().replace("/etc/prometheus/rules", str(tmp_path / "rules")))
    done = promtool("check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
