"""The benchmark's figure: accuracy over updates, one line per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_bench(report: dict[str, Any], path: Path) -> Path:
    """Write a PNG with two panels: mean accuracy over all concepts after each update, and
    accuracy on the first concept (where forgetting shows, until the concept recurs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = report["order"]
    updates = list(range(1, len(order) + 1))
    labels = [f"{i}\n{c}" for i, c in zip(updates, order)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for result in report["strategies"]:
        matrix = result["accuracy_matrix"]
        style = {"linewidth": 2.5} if result["name"] in (report["default"], report["oracle"]) else {"alpha": 0.8}
        style["linestyle"] = "--" if result["name"] == report["oracle"] else "-"
        left.plot(updates, [sum(row) / len(row) for row in matrix], marker="o", label=result["name"], **style)
        right.plot(updates, [row[0] for row in matrix], marker="o", label=result["name"], **style)
    left.set_title("mean accuracy over all concepts")
    right.set_title(f"accuracy on the first concept ({report['concepts'][0]})")
    for ax in (left, right):
        ax.set_xticks(updates, labels)
        ax.set_xlabel("after update (concept trained on)")
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    left.set_ylabel("accuracy")
    right.legend(loc="lower right", fontsize=8)
    seeds = report.get("seeds", [report.get("seed")])
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"
    fig.suptitle(f"modelci bench strategies: stream {report['stream']}, {which}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
