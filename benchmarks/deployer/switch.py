"""``modelci bench deploy``: publish K versions and R rollbacks while a client keeps asking.

Starts its own Triton and Redis (free ports, a temporary run folder), registers version 1,
feeds the deployer labeled samples of the model's task (so the gate's accuracy and shadow
checks score real samples: every check on), sends an open-loop unpinned request load with a
1 s deadline per request (`loadgen.OpenLoopClient`: latency from each request's due time, a
late or missing answer a failure), then drives the deployer core through K candidates (the
full gate, the Triton latency probe included) and R manual rollbacks back to back. Reports
requests, failures, the time from the gate's acceptance to serving, p99 during the switches
over p99 in the steady state before them, and the slowest request during the switches.

The K candidates are models of the same task as version 1, as good as it, so the gate runs
with a non-inferiority margin (``accuracy_margin`` -0.02): at the default 0, one sample more or
less right on the fresh set decides between equals.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from infra.local.process import free_port, wait_until
from infra.local.redis import Redis
from infra.local.settings import InfraSettings
from infra.local.triton import Triton
from services.common.events import Candidate, Command, LabeledSample, LabeledSampleBatch, OffsetRange
from services.common.registry import VersionRecord, VersionStatus
from services.common.settings import RedisSettings, TritonSettings
from services.deployer.app import build_deployer
from services.deployer.register import register_model
from services.deployer.settings import DeployerSettings
from strategies.architecture import Architecture

from benchmarks import REPO
DIM, CLASSES = 16, 4


def bench_net() -> nn.Module:
    """The benchmarked model's architecture (probabilities out), as registered."""
    return nn.Sequential(nn.Sequential(nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, CLASSES)), nn.Softmax(dim=1))


def _task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of the benchmarked model's task (a fixed linear rule)."""
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, DIM))).float()
    w = torch.from_numpy(np.random.default_rng(7).normal(size=(DIM, CLASSES))).float()
    return x, (x @ w).argmax(1)


SAMPLE_RECORDS, SAMPLES_PER_RECORD, TRAINED_RECORDS = 20, 500, 10
"""Labeled-sample records fed to the deployer; the candidates' ranges cover the first ten, so
the gate's fresh set is the held-out share of the other ten (~1,000 samples)."""
POLICY = {"accuracy_margin": -0.02}
DEADLINE_S = 1.0


def _feed_samples(dep) -> None:
    for offset in range(SAMPLE_RECORDS):
        x, y = _task(SAMPLES_PER_RECORD, 1000 + offset)
        items = [LabeledSample(sample_id=f"s{offset}-{i}", model_version=1, features=[float(v) for v in row], label=int(label),
                               predicted=int(label), confidence=0.9, prediction_partition=0, prediction_offset=i,
                               feedback_partition=0, feedback_offset=i)
                 for i, (row, label) in enumerate(zip(x.numpy(), y.numpy()))]
        dep.handle_samples(LabeledSampleBatch(model="bench", items=items), partition=0, offset=offset)


def _artifact(seed: int) -> bytes:
    torch.manual_seed(seed)
    x, y = _task(4000, seed)  # well trained, so the K versions are equals and the accuracy gate compares like with like
    net = nn.Sequential(nn.Linear(DIM, 32), nn.ReLU(), nn.Linear(32, CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    model = bench_net()
    model[0].load_state_dict(net.state_dict())
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, torch.zeros(2, DIM)), buf)
    return buf.getvalue()


class _ClientProcess:
    """`loadgen.OpenLoopClient` in a process of its own: in this one its sender threads would
    share the GIL with the deployer core whose latency probe and switch they measure."""

    def __init__(self, url: str, model: str, rate: float, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.deployer.loadgen", url, model, str(DIM), str(rate),
                                      str(DEADLINE_S), str(out)], cwd=REPO)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ok(self) -> int:
        try:
            return int(json.loads(Path(f"{self.out}.progress").read_text())["ok"])
        except (OSError, ValueError, KeyError):
            return 0

    def stop(self) -> SimpleNamespace:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        doc = json.loads(self.out.read_text())
        return SimpleNamespace(ok=doc["ok"], failed=doc["failed"], latencies=[tuple(x) for x in doc["latencies"]])


def _p99(latencies: list[tuple[float, float]], start: float, end: float) -> float:
    window = [s for t, s in latencies if start <= t <= end]
    return float(np.percentile(window, 99) * 1000) if window else float("nan")


def run(versions: int = 3, rollbacks: int = 2, rate: float = 100.0, steady_s: float = 8.0,
        out_dir: Path = Path("reports")) -> dict[str, Any]:
    torch.set_num_threads(1)
    run_dir = Path(tempfile.mkdtemp(prefix="modelci-bench-deploy-"))
    infra = InfraSettings(run_dir=run_dir, tools_dir=REPO / ".modelci" / "tools", redis_port=free_port(),
                          triton_http_port=free_port(), triton_grpc_port=free_port(), triton_metrics_port=free_port())
    triton, redis = Triton(infra), Redis(infra)
    client: _ClientProcess | None = None
    redis.start()
    triton.start()
    try:
        settings = DeployerSettings(
            redis=RedisSettings(url=redis.address(), key_prefix="bench:"),
            triton=TritonSettings(http_url=triton.address(), grpc_url=f"127.0.0.1:{infra.triton_grpc_port}",
                                  model_repository=str(triton.model_repository)),
            artifact_root=str(run_dir / "artifacts"),
        )
        events: list = []
        dep = build_deployer(settings, events.append)
        name = "bench"
        register_model(dep.registry, dep.store, dep.triton, dep.repository, name, _artifact(0), [DIM],
                       [str(c) for c in range(CLASSES)], policy=POLICY,
                       architecture=Architecture(f"{__name__}:bench_net", output="probabilities"))
        _feed_samples(dep)
        client = _ClientProcess(triton.address(), name, rate, run_dir / "client.json")
        wait_until(lambda: client.ok() >= 10, 60, "load client warm", alive=client.alive)
        steady_start = time.time()
        wait_until(lambda: time.time() - steady_start >= steady_s, steady_s + 30, "steady state")
        steady_end = time.time()
        switch_s, gate_s, rollback_s, marks, scored = [], [], [], [], []
        for i in range(versions):
            data = _artifact(i + 1)
            uri, sha = dep.store.put(data)
            v = dep.registry.next_version(name)
            dep.registry.put_version(VersionRecord(model=name, version=v, status=VersionStatus.CANDIDATE,
                                                   artifact_uri=uri, artifact_sha256=sha, base_version=v - 1))
            cand = Candidate(update_id=f"bench-{v}", model=name, outcome="succeeded", base_version=v - 1, strategy="naive",
                             code_version="bench", version=v, artifact_uri=uri, artifact_sha256=sha,
                             sample_ranges=[OffsetRange(partition=0, start=0, end=TRAINED_RECORDS)])
            dep.handle_candidate(cand)
            record = dep.registry.require_version(name, v)
            if record.status != VersionStatus.SERVING:
                failed = [{"name": c["name"], **c.get("values", {})} for c in record.report.get("checks", []) if not c.get("passed")]
                raise RuntimeError(f"bench candidate v{v} not deployed: {record.report.get('reasons')} {failed}")
            deployed = json.loads(events[-1].report)
            switch_s.append(deployed["switch_s"])
            gate_s.append(record.report["gate_seconds"])
            checked = {c["name"]: c for c in record.report["checks"]}
            scored.append({k: checked[k]["values"].get("samples") for k in ("accuracy_fresh", "shadow") if k in checked})
            marks.append((time.time(), f"v{v}"))
        for _ in range(rollbacks):
            start = time.perf_counter()
            before = dep.registry.require_model(name).serving_version
            dep.handle_command(Command(model=name, action="rollback", actor="bench"))
            after = dep.registry.require_model(name).serving_version
            if after == before:
                raise RuntimeError("rollback did not happen")
            rollback_s.append(time.perf_counter() - start)
            marks.append((time.time(), f"rb v{after}"))
        switches_end = time.time()
        load = client.stop()
        report = {
            "requests": load.ok + len(load.failed),
            "failed": len(load.failed),
            "versions": versions,
            "rollbacks": rollbacks,
            "rate_rps": rate,
            "client": f"open loop, latency from each request's due time, deadline {DEADLINE_S:.0f} s (a later answer is a failure)",
            "policy": POLICY,
            "gate_samples_scored": scored,
            "switch_median_s": round(float(np.median(switch_s)), 3),
            "switch_max_s": round(float(np.max(switch_s)), 3),
            "gate_median_s": round(float(np.median(gate_s)), 3),
            "rollback_median_s": round(float(np.median(rollback_s)), 3) if rollback_s else None,
            "steady_p99_ms": round(_p99(load.latencies, steady_start, steady_end), 3),
            "switching_p99_ms": round(_p99(load.latencies, steady_end, switches_end), 3),
        }
        report["p99_ratio"] = round(report["switching_p99_ms"] / report["steady_p99_ms"], 3)
        # The slowest single request while switching (from its due time).
        report["switching_max_ms"] = round(max(s for t, s in load.latencies if steady_end <= t <= switches_end) * 1000, 1)
        report["failures_sample"] = load.failed[:3]
        _write(report, load.latencies, marks, steady_start, Path(out_dir))
        return report
    finally:
        if client is not None and client.alive():
            client.proc.kill()
        triton.stop()
        redis.stop()


def _write(report: dict, latencies, marks, t0: float, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "deploy.json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot([t - t0 for t, _ in latencies], [s * 1000 for _, s in latencies], ".", ms=2, alpha=0.6)
    for t, label in marks:
        ax.axvline(t - t0, color="red", lw=0.8)
        ax.text(t - t0, ax.get_ylim()[1] * 0.9, label, rotation=90, fontsize=7, va="top")
    ax.set_xlabel("seconds")
    ax.set_ylabel("request latency (ms)")
    ax.set_title(f"unpinned requests while switching: {report['requests']} sent, {report['failed']} failed")
    fig.tight_layout()
    fig.savefig(out_dir / "deploy.png", dpi=120)
    plt.close(fig)
