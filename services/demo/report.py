"""Figures and plots of one demo run, computed from what was sent and what came back."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from services.demo.observer import Answer, Marker
from services.demo.traffic import Sent


def accuracy(pairs: list[tuple[Sent, Answer]]) -> float | None:
    """Accuracy on the scored split only: inputs whose labels never reached the trainer."""
    pairs = [(s, a) for s, a in pairs if s.scored]
    if not pairs:
        return None
    return round(float(np.mean([a.label == s.label for s, a in pairs])), 4)


def joined(sent: dict[str, Sent], answers: dict[str, Answer]) -> list[tuple[Sent, Answer]]:
    return sorted(((s, answers[r]) for r, s in sent.items() if r in answers), key=lambda p: p[0].sent_at)


def series(pairs: list[tuple[Sent, Answer]], t0: float, bin_s: float = 1.0) -> dict[str, list[float]]:
    """Accuracy and latency per time bin (by send time), for the plots and the JSON timeline."""
    if not pairs:
        return {"t": [], "accuracy": [], "latency_p50_ms": [], "latency_p99_ms": [], "version": []}
    bins: dict[int, list[tuple[Sent, Answer]]] = {}
    for s, a in pairs:
        bins.setdefault(int((s.sent_at - t0) // bin_s), []).append((s, a))
    keys = sorted(bins)
    return {
        "t": [k * bin_s for k in keys],
        # Scored inputs only (labels withheld); a bin without one has no accuracy.
        "accuracy": [float(np.mean([a.label == s.label for s, a in bins[k] if s.scored])) if any(s.scored for s, _ in bins[k]) else None
                     for k in keys],
        "latency_p50_ms": [float(np.percentile([a.latency_ms for _, a in bins[k]], 50)) for k in keys],
        "latency_p99_ms": [float(np.percentile([a.latency_ms for _, a in bins[k]], 99)) for k in keys],
        "version": [max(a.version for _, a in bins[k]) for k in keys],
    }


def plot(report: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, t0 = report["series"], 0.0
    colours = {"drift": "tab:red", "update": "tab:orange", "candidate": "tab:purple", "validated": "tab:cyan",
               "deployed": "tab:green", "rolled_back": "black", "rejected": "grey"}
    paths = []
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(s["t"], [np.nan if v is None else v for v in s["accuracy"]], color="tab:blue", label="accuracy of scored inputs (1 s bins)")
    for phase in report["phases"]:
        ax.axvline(phase["start_s"] - t0, color="tab:gray", linestyle=":", linewidth=1)
        ax.text(phase["start_s"] + 0.2, 0.03, phase["name"], fontsize=8, color="tab:gray")
    seen = set()
    for m in report["timeline"]:
        colour = colours.get(m["kind"])
        if colour is None:
            continue
        ax.axvline(m["t_s"], color=colour, linestyle="--", linewidth=1, label=None if m["kind"] in seen else m["kind"])
        seen.add(m["kind"])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("seconds since traffic started")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ModelCI-e demo: {report['model']} on stream {report['stream']}")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    paths.append(folder / "accuracy.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(s["t"], s["latency_p50_ms"], label="p50")
    ax.plot(s["t"], s["latency_p99_ms"], label="p99")
    ax.set_xlabel("seconds since traffic started")
    ax.set_ylabel("request → prediction latency (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(folder / "latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write(report: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    return [folder / "report.json", *plot(report, folder)]


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(type(value))


def marker_rows(markers: list[Marker], t0: float) -> list[dict[str, Any]]:
    return [{"kind": m.kind, "t_s": round(m.at - t0, 3), **m.detail} for m in markers]
