"""`modelci bench strategies` on a tiny configuration: the JSON shape and its invariants."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from benchmarks.strategies.run import BenchConfig, run_bench, run_seeds
from strategies.metrics import (
    average_accuracy,
    backward_transfer,
    forgetting,
    max_forgetting_per_concept,
)

TINY = ["--seeds", "0", "--size", "100", "--hidden", "32", "--set", "*.epochs=2", "--set", "*.lr=0.01"]


def _check_shape(report: dict, names: list[str]) -> None:
    assert set(report) >= {"stream", "default", "oracle", "strategies"}
    assert report["default"] == "replay" and report["oracle"] == "joint"
    assert [s["name"] for s in report["strategies"]] == names
    updates, concepts = len(report["order"]), len(report["concepts"])
    for s in report["strategies"]:
        for key in ("average_accuracy", "forgetting", "bwt", "update_seconds", "peak_memory_mb"):
            assert isinstance(s[key], float), key
        assert 0.0 <= s["average_accuracy"] <= 1.0
        assert -1.0 <= s["forgetting"] <= 1.0 and -1.0 <= s["bwt"] <= 1.0
        assert s["update_seconds"] > 0 and s["peak_memory_mb"] >= 0
        matrix = s["accuracy_matrix"]
        assert len(matrix) == updates and all(len(row) == concepts for row in matrix)
        assert all(0.0 <= a <= 1.0 for row in matrix for a in row)


def test_cli_prints_the_json_report_and_writes_the_plot(tmp_path):
    plot = tmp_path / "bench.png"
    args = ["bench", "strategies", "--strategies", "naive,replay,joint", "--json", "--no-isolate", "--plot", str(plot), *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stream"] == "recurring"  # the default stream
    _check_shape(report, ["naive", "replay", "joint"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_follow_from_the_accuracy_matrix_and_the_seed_reproduces_them():
    config = BenchConfig(
        stream="sea", strategies=["naive", "ewc"], hidden=16, train_per_experience=100,
        hyperparameters={"*": {"epochs": 2, "lr": 0.01}}, isolate=False,
    )
    first, second = run_bench(config), run_bench(config)
    _check_shape(first, ["naive", "ewc"])
    order = [first["concepts"].index(c) for c in first["order"]]
    for s, again in zip(first["strategies"], second["strategies"]):
        m = s["accuracy_matrix"]
        assert s["average_accuracy"] == average_accuracy(m)
        assert s["forgetting"] == forgetting(m, order) and s["bwt"] == backward_transfer(m, order)
        assert s["forgetting_per_concept"] == max_forgetting_per_concept(m, order)
        assert again["accuracy_matrix"] == m


def test_several_seeds_give_each_figure_as_mean_and_std_over_the_seed_runs():
    import numpy as np

    config = BenchConfig(stream="sea", strategies=["naive", "replay"], hidden=16, train_per_experience=80,
                         hyperparameters={"*": {"epochs": 1, "lr": 0.01}}, isolate=False)
    report = run_seeds(config, [0, 1])
    _check_shape(report, ["naive", "replay"])
    assert report["seeds"] == [0, 1] and "seed" not in report
    singles = [run_bench(BenchConfig(**{**config.__dict__, "seed": seed})) for seed in (0, 1)]
    for i, row in enumerate(report["strategies"]):
        values = [single["strategies"][i]["average_accuracy"] for single in singles]
        assert row["average_accuracy"] == float(np.mean(values)) and row["average_accuracy_std"] == float(np.std(values))
        assert [r["seed"] for r in row["per_seed"]] == [0, 1]
    assert values[0] != values[1], "the seeds did not change the run: the std measures nothing"


def test_each_strategy_in_its_own_process():
    config = BenchConfig(
        strategies=["naive"], hidden=16, train_per_experience=60,
        hyperparameters={"*": {"epochs": 1}}, isolate=True,
    )
    report = run_bench(config)
    _check_shape(report, ["naive"])


def test_cli_rejects_bad_names_and_values_before_training():
    runner = CliRunner()
    bad_name = runner.invoke(app, ["bench", "strategies", "--strategies", "nope", "--json", "--no-isolate"])
    assert bad_name.exit_code == 2 and "unknown strategy" in bad_name.output
    bad_value = runner.invoke(app, ["bench", "strategies", "--set", "replay.mem_size=0", "--json", "--no-isolate"])
    assert bad_value.exit_code == 2 and "mem_size" in bad_value.output


@pytest.mark.parametrize("module", ["strategies.metrics", "strategies.models", "strategies.streams", "strategies"])
def test_docstring_examples(module):
    import doctest
    import importlib

    failures, _ = doctest.testmod(importlib.import_module(module))
    assert failures == 0


def researchers_stream(seed: int, train_per_experience: int | None = None):
    """A stream of a researcher's own, named by dotted path (here SEA, renamed)."""
    from strategies.streams import get_stream

    stream = get_stream("sea", seed, size=train_per_experience)
    stream.name = "my-sea"
    return stream


def test_a_researchers_own_model_and_stream_by_dotted_path(tmp_path):
    result = CliRunner().invoke(app, [
        "bench", "strategies", "--stream", f"{__name__}:researchers_stream", "--model", "strategies.models:make_tabular",
        "--model-kwargs", '{"hidden": 12}', "--strategies", "naive,replay", "--no-isolate", "--json",
        "--plot", str(tmp_path / "p.png"), "--size", "100", "--set", "*.epochs=2", "--seeds", "0",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    _check_shape(report, ["naive", "replay"])
    assert report["stream"] == "my-sea" and report["model"] == "strategies.models:make_tabular"
    bad = CliRunner().invoke(app, ["bench", "strategies", "--model", "no_such.module:make", "--no-isolate", "--json"])
    assert bad.exit_code == 2 and "cannot import model factory" in bad.output


def test_the_text_and_image_streams_build_their_models(tmp_path):
    # Token ids get a bag of embeddings sized to the stream's vocabulary by default (an MLP
    # cannot take ids); an image factory that takes `input_shape` gets the C×H×W shape.
    runner = CliRunner()
    common = ["--strategies", "naive,replay", "--no-isolate", "--json", "--size", "48", "--set", "*.epochs=1", "--seeds", "0"]
    for stream, model, kwargs in [
        ("text-topics", [], "{}"),
        ("text-topics", ["--model", "strategies.models:make_text"], '{"embed_dim": 8}'),
        ("digits-image", ["--model", "strategies.models:make_resnet"], '{"width": 2, "layers": [1, 1, 1, 1]}'),
    ]:
        result = runner.invoke(app, ["bench", "strategies", "--stream", stream, *model, "--model-kwargs", kwargs, *common,
                                     "--plot", str(tmp_path / f"{stream}.png")])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout.strip().splitlines()[-1])
        _check_shape(report, ["naive", "replay"])
        assert report["model"] == (model[1] if model else "strategies.models:make_text")
        assert report["datatype"] == ("INT64" if stream == "text-topics" else "FP32")
