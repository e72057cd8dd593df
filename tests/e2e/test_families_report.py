"""`modelci bench families` without a stack: family choice, the JSON and the plot it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.families import FAMILIES, run_families, write


def _row(name: str, family: str, serving: float | None) -> dict:
    return {"family": family, "name": name, "update_seconds": 1.0, "drift_to_serving_s": serving, "accuracy_before": 0.98,
            "accuracy_after_drift": 0.1, "accuracy_recovered": 0.95 if serving else None, "p50_ms": 10.0, "p99_ms": 50.0,
            "peak_memory_mb": 2000.0, "goals": {"drift_to_serving_s": 20.0}}


def test_the_issue_s_families_are_all_there_and_unknown_names_are_refused():
    assert {f.family for f in FAMILIES} == {"image", "text", "tabular"}
    with pytest.raises(ValueError, match="no family matches"):
        run_families(stack=None, names=["audio"], report_dir=Path("/nonexistent"), seed=0, narrate=print)  # type: ignore[arg-type]


def test_the_report_is_json_and_a_plot_even_when_a_family_missed_its_goal(tmp_path: Path):
    result = {"families": [_row("demo-mlp", "tabular", 15.0), _row("image-resnet18-narrow", "image", None)], "seed": 0}
    json_path, png = write(result, tmp_path)
    assert json.loads(json_path.read_text())["families"][1]["drift_to_serving_s"] is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
