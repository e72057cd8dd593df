"""The dashboards as generated: current on disk, valid PromQL, variables and annotations present."""

from __future__ import annotations

import json

from infra.grafana.generate import DASHBOARDS_DIR, render, stale, to_promql, queries
from tests.observability.promql import promtool


def test_committed_json_is_what_the_code_generates() -> None:
    assert stale() == [], "run `modelci observability dashboards` and commit infra/grafana/dashboards"


def test_an_overview_and_one_dashboard_per_service() -> None:
    names = {p.stem for p in DASHBOARDS_DIR.glob("*.json")}
    assert {"overview", "inference", "drift", "trainer", "deployer", "console", "triton"} <= names


def test_every_panel_reads_the_provisioned_prometheus_and_ids_are_unique() -> None:
    for name, text in render().items():
        board = json.loads(text)
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, name
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), name
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, (name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), (name, panel["title"])


def test_model_and_version_variables_and_event_annotations_on_the_overview() -> None:
    board = json.loads(render()["overview.json"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"model", "version"} <= set(variables)
    assert variables["version"]["query"].count("$model") == 1  # versions of the selected models only
    annotations = {a["name"]: a["expr"] for a in board["annotations"]["list"]}
    assert "modelci_drift_detections_total" in annotations["Drift detected"]
    assert "modelci_trainer_updates_finished_total" in annotations["Update finished"]
    assert "modelci_deployer_deployments_total" in annotations["Deployed"]
    assert "modelci_deployer_rollbacks_total" in annotations["Rolled back"]
    panels = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert any('model=~"$model"' in e and 'version=~"$version"' in e for e in panels)


def test_every_query_is_valid_promql(tmp_path) -> None:
    """promtool parses each query (variables substituted as Grafana does) as a recording rule."""
    group = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}", "expr": to_promql(q.expr)} for i, q in enumerate(queries())
    ]}]}
    path = tmp_path / "dashboards.yml"
    path.write_text(json.dumps(group))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
