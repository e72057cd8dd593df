"""`modelci bench families` without a stack: family choice, the JSON and the plot it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.families.run import FAMILIES, run_families, summarise, trainer_busy, write


def _row(name: str, family: str, serving: float | None) -> dict:
    return {"family": family, "name": name, "update_seconds": 1.0, "drift_to_serving_s": serving, "accuracy_before": 0.98,
            "accuracy_after_drift": 0.1, "accuracy_recovered": 0.95 if serving else None, "p50_ms": 10.0, "p99_ms": 50.0,
            "peak_memory_mb": 2000.0, "goals": {"drift_to_serving_s": 20.0}}


def test_the_issue_s_families_are_all_there_and_unknown_names_are_refused():
    assert {f.family for f in FAMILIES} == {"image", "text", "tabular"}
    with pytest.raises(ValueError, match="no family matches"):
        run_families(stack=None, names=["audio"], report_dir=Path("/nonexistent"), seeds=[0], narrate=print)  # type: ignore[arg-type]


def test_the_report_is_json_and_a_plot_even_when_a_family_missed_its_goal(tmp_path: Path):
    result = {"families": [_row("demo-mlp", "tabular", 15.0), _row("image-resnet18-narrow", "image", None)], "seeds": [0]}
    json_path, png = write(result, tmp_path)
    assert json.loads(json_path.read_text())["families"][1]["drift_to_serving_s"] is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _run(seed: int, serving: float | None, recovered: float | None) -> dict:
    row = {**_row("image-resnet18-narrow", "image", serving), "accuracy_recovered": recovered, "seed": seed, "stream": "digits-image",
           "architecture": "strategies.models:make_resnet", "architecture_kwargs": {"width": 8}, "hyperparameters": None}
    row["goals"] = {"drift_to_serving_s": 60.0, "drift_to_serving_met": serving is not None and serving <= 60.0,
                    "recovered_met": recovered is not None and recovered >= 0.93}
    return row


def test_several_seeds_give_mean_std_and_the_runs_that_met_each_goal():
    row = summarise([_run(0, 40.0, 0.96), _run(1, 50.0, 0.90), _run(2, None, None)])
    assert row["drift_to_serving_s"] == 45.0 and row["drift_to_serving_s_std"] == 5.0 and row["drift_to_serving_s_n"] == 2
    assert row["goals"]["drift_to_serving_met_runs"] == "2/3" and row["goals"]["drift_to_serving_met"] is False
    assert row["goals"]["recovered_met_runs"] == "1/3"
    assert row["seeds"] == [0, 1, 2] and len(row["runs"]) == 3


def test_the_trainer_counts_as_busy_while_an_update_is_taken_up_or_queued():
    idle = (
        "# HELP modelci_trainer_updates_started_total Update requests taken up.\n"
        'modelci_trainer_updates_started_total{model="a"} 3.0\n'
        'modelci_trainer_updates_finished_total{model="a"} 2.0\n'
        'modelci_trainer_updates_failed_total{model="a",reason="x"} 1.0\n'
        "modelci_trainer_pending_updates 0.0\n"
    )
    assert not trainer_busy(idle)
    assert trainer_busy(idle.replace('started_total{model="a"} 3.0', 'started_total{model="a"} 4.0'))
    assert trainer_busy(idle.replace("pending_updates 0.0", "pending_updates 1.0"))
