"""Orchestration of ``modelci bench interference``: Triton, a model, the load, the training job.

Phases, each with the same steady open-loop load (latency from each request's due time):
``idle`` (no training), ``control_on`` (training with every lever of the interference control at
the services' defaults, what docker-compose ships), ``control_up`` (the settings `modelci up`
ships), ``control_priority`` (threads, niceness and SCHED_IDLE only, no admission rule: what
scheduling alone achieves), ``control_off`` (the same training flat out); and, per training
mode, a ``solo_*`` phase with no load at all, where the same job sets its solo pace. Rounds of
all phases, interleaved, so the shared machine's background load falls on all alike. Figures:
p50/p99 latency per loaded phase (over all rounds) and their ratios to idle, p99 per round, and
what the control costs training: steps/s per phase and the time one update takes at that pace
(``update_seconds_*`` = steps of one update ÷ steps/s) against its solo time (``update_slowdown_*``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from infra.local.process import free_port, wait_until
from infra.local.settings import InfraSettings
from infra.local.triton import Triton
from services.common.triton_repo import ModelSpec, write_configs, write_version

from benchmarks import REPO
MODEL = "interference-mlp"
MODES = {"control_on": "on", "control_up": "up", "control_priority": "priority", "control_off": "off"}
LOADED = ("idle", *MODES)
SOLO = {f"solo_{mode}": name for name, mode in MODES.items()}
"""Each solo phase runs its loaded phase's job with no load."""
PHASES = (*LOADED, *SOLO)


def _publish(triton: Triton) -> None:
    import torch
    import tritonclient.http as httpclient

    from strategies.export import export_torchscript
    from strategies.models import make_mlp

    torch.manual_seed(0)
    write_configs(triton.model_repository, ModelSpec(MODEL, (64,), 10))
    write_version(triton.model_repository, MODEL, 1, export_torchscript(make_mlp(64, 10), (64,)))
    client = httpclient.InferenceServerClient(triton.address())
    client.load_model(MODEL)
    wait_until(lambda: client.is_model_ready(MODEL), 60, "benchmark model")
    client.close()


def _percentiles(latencies: list[float]) -> dict[str, float]:
    a = np.asarray(latencies)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "n": int(a.size)}


def _job(mode: str, triton: Triton, samples: int, work: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    out = work / f"job-{mode}.json"
    metrics_url = f"http://127.0.0.1:{triton.settings.triton_metrics_port}/metrics"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.trainer.job", mode, metrics_url, str(samples), str(out)], cwd=REPO, env=env
    )
    wait_until(out.exists, 180, f"training job ({mode})", alive=lambda: proc.poll() is None)
    return proc, out


def _measure(triton: Triton, rate: float, seconds: float, out: Path, env: dict) -> dict:
    subprocess.run(
        [sys.executable, "-m", "benchmarks.trainer.load", triton.address(), MODEL, str(rate), str(seconds), str(out)],
        cwd=REPO,
        env=env,
        check=True,
    )
    return json.loads(out.read_text())


def _phases(triton: Triton, rate: float, seconds: float, samples: int, rounds: int, work: Path) -> dict[str, dict]:
    """Rounds of idle / control_on / control_off, interleaved so that background load on a
    shared machine hits every phase alike. Both training jobs start once and are frozen
    (SIGSTOP) outside their phase, so no phase pays for start-up."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    jobs = {name: _job(mode, triton, samples, work, env) for name, mode in MODES.items()}
    for proc, _ in jobs.values():
        os.kill(proc.pid, signal.SIGSTOP)
    phases = {name: {"latencies_ms": [], "service_ms": [], "late": 0, "errors": 0, "p99_by_round": [], "steps": 0, "paused_s": 0.0}
              for name in PHASES}
    try:
        for r in range(rounds):
            for name in PHASES:
                job = jobs.get(SOLO.get(name, name))
                before = None
                if job is not None:
                    os.kill(job[0].pid, signal.SIGCONT)
                    time.sleep(0.5)  # let training reach its steady state before measuring (not a test sync)
                    before = json.loads(job[1].read_text())
                started = time.perf_counter()
                if name in SOLO:
                    time.sleep(seconds)  # the solo phase's measured window: training alone, no load
                    result = None
                else:
                    result = _measure(triton, rate, seconds, work / f"{name}-{r}.json", env)
                elapsed = time.perf_counter() - started
                phase = phases[name]
                if job is not None:
                    after = json.loads(job[1].read_text())
                    os.kill(job[0].pid, signal.SIGSTOP)
                    phase["steps"] += after.get("steps", 0) - before.get("steps", 0)
                    phase["paused_s"] += after.get("paused_seconds", 0.0) - before.get("paused_seconds", 0.0)
                    phase["job"] = after
                phase["seconds"] = phase.get("seconds", 0.0) + elapsed
                if result is not None:
                    phase["latencies_ms"] += result["latencies_ms"]
                    phase["service_ms"] += result["service_ms"]
                    phase["late"] += result["late"]
                    phase["errors"] += result["errors"]
                    phase["p99_by_round"].append(round(float(np.percentile(result["latencies_ms"], 99)), 3))
    finally:
        for proc, _ in jobs.values():
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=15)  # a SCHED_IDLE thread may wait long for a CPU on a busy box
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
    for name in LOADED:
        phases[name].update(_percentiles(phases[name]["latencies_ms"]))
        phases[name]["service_p99_ms"] = float(np.percentile(phases[name]["service_ms"], 99))
    return phases


def run(rate: float = 200.0, seconds: float = 10.0, samples: int = 3000, rounds: int = 3, out_dir: Path = REPO / "reports") -> dict:
    import torch

    with tempfile.TemporaryDirectory(prefix="modelci-bench-interference-") as tmp:
        work = Path(tmp)
        settings = InfraSettings(
            run_dir=work / "run",
            tools_dir=REPO / ".modelci" / "tools",
            triton_http_port=free_port(),
            triton_grpc_port=free_port(),
            triton_metrics_port=free_port(),
        )
        triton = Triton(settings)
        triton.start()
        try:
            _publish(triton)
            phases = _phases(triton, rate, seconds, samples, rounds, work)
        finally:
            triton.stop()
    idle = phases["idle"]

    def training(name: str) -> dict:
        p, solo = phases[name], phases[f"solo_{MODES[name]}"]
        job = p.get("job", {})
        per_update = job.get("steps_per_update") or solo.get("job", {}).get("steps_per_update")
        rate_loaded = p["steps"] / p["seconds"] if p.get("seconds") else 0.0
        rate_solo = solo["steps"] / solo["seconds"] if solo.get("seconds") else 0.0
        loaded_s = per_update / rate_loaded if per_update and rate_loaded else None
        solo_s = per_update / rate_solo if per_update and rate_solo else None
        return {
            "steps_per_s": round(rate_loaded, 2),
            "steps_per_s_solo": round(rate_solo, 2),
            "paused_share": round(p["paused_s"] / p["seconds"], 3) if p.get("seconds") else None,
            "steps_per_update": per_update,
            "update_seconds": round(loaded_s, 2) if loaded_s else None,
            "update_seconds_solo": round(solo_s, 2) if solo_s else None,
            "update_slowdown": round(loaded_s / solo_s, 2) if loaded_s and solo_s else None,
            "torch_threads": job.get("torch_threads"),
            "limits": job.get("limits"),
            "control": job.get("control"),
        }

    report: dict = {"idle_p50_ms": round(idle["p50_ms"], 3), "idle_p99_ms": round(idle["p99_ms"], 3)}
    for name in MODES:
        key = name.removeprefix("control_")
        t = training(name)
        report.update({
            f"control_{key}_p50_ms": round(phases[name]["p50_ms"], 3),
            f"control_{key}_p99_ms": round(phases[name]["p99_ms"], 3),
            f"ratio_{key}": round(phases[name]["p99_ms"] / idle["p99_ms"], 3),
            f"ratio_{key}_p50": round(phases[name]["p50_ms"] / idle["p50_ms"], 3),
            f"update_seconds_solo_{key}": t["update_seconds_solo"],
            f"update_seconds_{key}": t["update_seconds"],
            f"update_slowdown_{key}": t["update_slowdown"],
            f"training_{key}": t,
        })
    report["update_seconds_solo"] = report["update_seconds_solo_on"]
    report.update({
        "latency": "open loop: from each request's due time (queueing behind a slow answer counted); service_p99_ms: from the send",
        "service_p99_ms": {name: round(phases[name]["service_p99_ms"], 3) for name in LOADED},
        "goal": "p99 <= 1.1x idle while the update finishes within 2x its solo time",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "rate_rps": rate,
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "train_samples": samples,
        "p99_by_round": {name: phases[name]["p99_by_round"] for name in LOADED},
        "requests": {name: {"n": phases[name]["n"], "errors": phases[name]["errors"], "late": phases[name]["late"]} for name in LOADED},
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "interference.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(phases, report, out_dir / "interference.png")
    return report


def _plot(phases: dict, report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(LOADED)
    xs = np.arange(len(names))
    left.bar(xs - 0.2, [phases[n]["p50_ms"] for n in names], 0.4, label="p50")
    left.bar(xs + 0.2, [phases[n]["p99_ms"] for n in names], 0.4, label="p99")
    left.set_xticks(xs, [n.replace("control_", "") for n in names])
    left.set_ylabel("Triton latency (ms)")
    left.set_title(f"{report['rate_rps']:.0f} req/s, batch 1, {report['device']}")
    left.legend()
    for n in LOADED:
        lat = np.sort(np.asarray(phases[n]["latencies_ms"]))
        right.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=n)
    right.set_xscale("log")
    right.set_xlabel("latency (ms)")
    right.set_ylabel("fraction of requests")
    right.set_title(
        f"p99 / idle: on {report['ratio_on']}x, up {report['ratio_up']}x, priority {report['ratio_priority']}x, off {report['ratio_off']}x",
        fontsize=9
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
