"""``modelci bench families``: the loop on one model of each family, through the real services.

Each family runs the demo's scenario (version 1 trained on the stream's first concept, served,
open-loop traffic at the demo's rate, the stream drifts, the loop detects, trains, validates and
deploys, the first concept returns) on the same running stack, one after another, and the
scenario's own summary gives the figures. Accuracy is scored only on the inputs whose labels the
demo withholds (a fifth of them, chosen by content: `services.demo.traffic.scored`), so no scored
input ever reached the trainer. One trainer serves the stack: a family whose update is still
training when the next family starts delays that family's update (run a slow family alone with
``--families``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.demo.config import DemoConfig

if TYPE_CHECKING:  # the family table itself imports no broker client (the GPU check reads it)
    from infra.local.embedded import EmbeddedStack
    from services.demo.scenario import Narrator


@dataclass(frozen=True)
class Family:
    name: str
    family: str
    """image, text or tabular (the issue's JSON shape)."""
    stream: str
    architecture: str
    goal_drift_to_serving_s: float
    architecture_kwargs: dict = field(default_factory=dict)
    hyperparameters: dict | None = None
    """What the family's model is registered with (``modelci model register --hyperparameters``);
    None: the strategy's defaults."""

    def demo_config(self, **overrides: Any) -> DemoConfig:
        """The demo's scenario on this family: the benchmark and the end-to-end test run the same one."""
        return DemoConfig(stream=self.stream, architecture=self.architecture, architecture_kwargs=dict(self.architecture_kwargs),
                          hyperparameters=None if self.hyperparameters is None else dict(self.hyperparameters), **overrides)


IMAGE_HYPERPARAMETERS = {"epochs": 3, "batch_size": 32}
"""Replay sized for the CNN as a team would size it (the rest: replay's defaults): a
convolutional update costs ~50× the demo MLP's per sample on one CPU thread, so 3 epochs over
the update's samples instead of 10 (at width 16 and 10 epochs it missed its 60 s goal 4×), in batches of 32
(offline, seed 0, the stream's own test split: rotated-digit accuracy 0.958 at batch 32 against
0.791 at 64 for the same 3 epochs)."""

FAMILIES = (
    Family("demo-mlp", "tabular", "recurring", "", 20.0),
    Family("tabular-bn-dropout", "tabular", "recurring", "strategies.models:make_tabular", 20.0),
    Family("image-resnet18-narrow", "image", "digits-image", "strategies.models:make_resnet", 60.0,
           architecture_kwargs={"width": 8}, hyperparameters=IMAGE_HYPERPARAMETERS),
    Family("text-embeddingbag", "text", "text-topics", "strategies.models:make_text", 30.0),
)
RECOVERY_GOAL_POINTS = 5.0
"""Recovered accuracy within this many points of the accuracy before the drift."""
FIELDS = ("update_seconds", "drift_to_serving_s", "accuracy_before", "accuracy_after_drift", "accuracy_recovered", "p50_ms", "p99_ms")


def run_family(family: Family, stack: EmbeddedStack, report_dir: Path, seed: int, narrate: Narrator) -> dict[str, Any]:
    from services.demo.scenario import run_demo

    config = family.demo_config(seed=seed)
    started = time.perf_counter()
    summary = run_demo(config, stack, narrate, report_dir / family.name, up_seconds=None)
    row: dict[str, Any] = {"family": family.family, "name": family.name, "stream": family.stream,
                           "architecture": family.architecture or "strategies.models:make_mlp",
                           "architecture_kwargs": family.architecture_kwargs, "hyperparameters": family.hyperparameters}
    row.update({k: summary.get(k) for k in FIELDS})
    # The whole stack's processes: proportional set size (libtorch's shared pages counted once)
    # and the plain RSS sum, as the README's demo figures give them.
    row["peak_memory_mb"] = summary.get("peak_rss_mb")
    row["peak_rss_sum_mb"] = summary.get("peak_rss_sum_mb")
    before, recovered = summary.get("accuracy_before"), summary.get("accuracy_recovered")
    serving = summary.get("drift_to_serving_s")
    row["goals"] = {
        "drift_to_serving_s": family.goal_drift_to_serving_s,
        "drift_to_serving_met": serving is not None and serving <= family.goal_drift_to_serving_s,
        "recovered_within_points": RECOVERY_GOAL_POINTS,
        "recovered_met": before is not None and recovered is not None and (before - recovered) * 100 <= RECOVERY_GOAL_POINTS,
    }
    row["false_drift_alarms"] = summary.get("false_drift_alarms")
    row["failed_requests"] = summary.get("failed_requests")
    row["run_seconds"] = round(time.perf_counter() - started, 1)
    return row


def trainer_busy(metrics_text: str) -> bool:
    """Whether the trainer has an update running (taken up, neither finished nor failed) or queued."""
    from services.trainer.control import parse_triton_metrics  # sums a metric over its label sets

    m = parse_triton_metrics(metrics_text)
    started, finished, failed = (m.get(f"modelci_trainer_updates_{k}_total", 0.0) for k in ("started", "finished", "failed"))
    return started > finished + failed or m.get("modelci_trainer_pending_updates", 0.0) > 0


def wait_for_trainer(stack: EmbeddedStack, timeout_s: float = 300.0) -> float:
    """Waits until the stack's one trainer is idle; returns the seconds waited.

    A family's later updates (one after its first concept returns, say) would otherwise train
    while the next family is measured and delay its update."""
    import httpx

    url = next((c.address for c in stack.status() if c.name == "trainer"), None)
    started = time.monotonic()
    while url and time.monotonic() - started < timeout_s:
        try:
            if not trainer_busy(httpx.get(url, timeout=2.0).text):
                break
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    return round(time.monotonic() - started, 1)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One family's row over its seeds: each figure's mean and ``_std`` (population, over the
    seeds that produced it), the goals met in how many runs, and every run kept under ``runs``."""
    first = runs[0]
    row = {k: first[k] for k in ("family", "name", "stream", "architecture", "architecture_kwargs", "hyperparameters")}
    for key in (*FIELDS, "peak_memory_mb", "peak_rss_sum_mb"):
        values = [r[key] for r in runs if r.get(key) is not None]
        row[key] = round(float(np.mean(values)), 4) if values else None
        row[f"{key}_std"] = round(float(np.std(values)), 4) if len(values) > 1 else None
        row[f"{key}_n"] = len(values)
    goals = dict(first["goals"])
    for key in ("drift_to_serving_met", "recovered_met"):
        goals[key + "_runs"] = f"{sum(bool(r['goals'][key]) for r in runs)}/{len(runs)}"
        goals[key] = all(r["goals"][key] for r in runs)
    row["goals"] = goals
    row["seeds"] = [r["seed"] for r in runs]
    row["runs"] = runs
    return row


def run_families(stack: EmbeddedStack, names: list[str] | None, report_dir: Path, seeds: list[int], narrate: Narrator,
                 fresh: bool = False) -> dict[str, Any]:
    """Every chosen family once per seed. ``fresh``: each run on a stack started for it and
    stopped after (what one team's model on its own stack sees: the earlier runs' models would
    otherwise stay loaded in Triton and count in the memory figures); else all on the running one."""
    chosen = [f for f in FAMILIES if not names or f.name in names or f.family in names]
    if not chosen:
        raise ValueError(f"no family matches {names}; known: {', '.join(f.name for f in FAMILIES)}")
    runs: dict[str, list[dict[str, Any]]] = {f.name: [] for f in chosen}
    for seed in seeds:
        for family in chosen:
            environ = dict(os.environ)  # the demo points this process at its stack (registration reads it)
            if fresh:
                stack.up()
            try:
                waited = wait_for_trainer(stack)
                row = run_family(family, stack, report_dir / f"seed-{seed}", seed, narrate)
            finally:
                if fresh:
                    stack.down()
                    os.environ.clear()
                    os.environ.update(environ)  # else the next stack would take this one's addresses for configured servers
            row.update(seed=seed, trainer_wait_s=waited)
            runs[family.name].append(row)
    return {"families": [summarise(runs[f.name]) for f in chosen], "seeds": list(seeds), "rate": DemoConfig.rate,
            "stack": "a fresh embedded stack per run" if fresh else "one running stack for every run",
            "config": "the demo's defaults (services/demo/config.py), each family's registration (benchmarks/families/run.py)"}


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["families"]
    names = [r["name"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    serving = [r["drift_to_serving_s"] or 0.0 for r in rows]
    left.bar(names, serving, yerr=[r.get("drift_to_serving_s_std") or 0.0 for r in rows], color="tab:blue", label="drift → serving (mean ± std)")
    left.scatter(names, [r["goals"]["drift_to_serving_s"] for r in rows], marker="_", s=600, color="tab:red", label="goal")
    left.set_ylabel("seconds")
    left.legend()
    width = 0.27
    xs = range(len(rows))
    for i, (key, label) in enumerate((("accuracy_before", "before"), ("accuracy_after_drift", "after drift (v1)"), ("accuracy_recovered", "recovered"))):
        right.bar([x + (i - 1) * width for x in xs], [r[key] or 0.0 for r in rows], width, yerr=[r.get(f"{key}_std") or 0.0 for r in rows], label=label)
    right.set_xticks(list(xs), names)
    right.set_ylim(0, 1)
    right.set_ylabel("live accuracy")
    right.legend(loc="lower right")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "families.json").write_text(json.dumps(result, indent=2))
    return [out / "families.json", plot(result, out / "families.png")]
