"""The demo's story: train on concept A, serve, drift to B, watch the loop recover, return to A."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from infra.local.embedded import EmbeddedStack, Endpoints
from services.common.client import ModelCIClient
from services.common.errors import ModelCIError
from services.common.events import new_id
from services.common.settings import KafkaSettings
from services.demo import report as rep
from services.demo.config import DEMO_STRATEGY, DemoConfig
from services.demo.model import demo_architecture, stream_datatype, train_first_version
from services.demo.observer import Marker, Observer
from services.demo.traffic import Traffic
from strategies.architecture import Architecture
from strategies.streams import get_stream


class DemoError(ModelCIError):
    reason = "demo"


@dataclass
class Narrator:
    """Where the story goes; the CLI prints it with rich, tests collect it."""

    say: Callable[[str], None] = print
    lines: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.lines.append(text)
        self.say(text)


class RssSampler(threading.Thread):
    """Peak memory of every process of the stack (servers, services, Triton stubs) and of the
    demo itself (its traffic and observer), each process counted once.

    Two figures, because they cost very differently: the plain RSS sum (``/proc/PID/statm``,
    ~0.2 ms a sweep) every 0.1 s, so a short peak is not missed; and PSS, proportional set size,
    once a second (~80 ms of kernel time a sweep on the 2-core machine, so not at 10 Hz). PSS
    counts a shared page, such as libtorch mapped by the trainer, the deployer and every Triton
    stub, once in total rather than once per process: what the stack really occupies; the RSS
    sum counts shared pages again in every process that maps them.
    """

    INTERVAL_S = 0.1
    PSS_EVERY = 10
    """Sweeps between two PSS sweeps (once a second)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(name="demo-rss", daemon=True)
        self.pids = [*pids, os.getpid()]
        self.peak_mb, self.peak_rss_sum_mb = 0.0, 0.0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def _processes(self) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        for pid in self.pids:
            try:
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    found.setdefault(p.pid, p)
            except psutil.Error:
                continue
        return list(found.values())

    def run(self) -> None:
        sweep = 0
        procs: list[psutil.Process] = []
        while not self._halt.wait(self.INTERVAL_S):
            if sweep % self.PSS_EVERY == 0:  # finding the children scans /proc: once a second too
                procs = self._processes()
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    if sweep % self.PSS_EVERY == 0:
                        pss += p.memory_full_info().pss
                except psutil.Error:
                    continue
            self.peak_rss_sum_mb = max(self.peak_rss_sum_mb, rss / 2**20)
            if sweep % self.PSS_EVERY == 0:
                self.peak_mb = max(self.peak_mb, pss / 2**20)
            sweep += 1


def register_first_version(endpoints: Endpoints, name: str, artifact: bytes, input_shape: list[int], classes: list[str],
                           architecture: Architecture | None = None, datatype: str = "FP32",
                           hyperparameters: dict | None = None) -> None:
    os.environ.update(endpoints.service_env())
    from services.common.artifacts import FileArtifactStore
    from services.common.registry import ModelRegistry
    from services.deployer.register import register_model
    from services.deployer.settings import DeployerSettings
    from services.deployer.triton_ops import TritonOps

    s = DeployerSettings()
    register_model(
        ModelRegistry(s.redis.client(), s.redis.key_prefix),
        FileArtifactStore(s.artifact_root),
        TritonOps(s.triton.http_url, s.triton_retries, s.triton_backoff_s, s.load_timeout_s),
        Path(s.triton.model_repository),
        name,
        artifact,
        input_shape,
        classes,
        strategy=DEMO_STRATEGY,
        hyperparameters=hyperparameters,
        actor="demo",
        architecture=architecture,
        datatype=datatype,
    )


def run_demo(config: DemoConfig, stack: EmbeddedStack, narrate: Narrator, report_dir: Path, up_seconds: float | None) -> dict[str, Any]:
    recorded = stack.recorded()
    if recorded is None:
        raise DemoError("no embedded stack is running: start one with `modelci up` (or run `modelci demo` without --no-start)")
    endpoints, _ = recorded
    pids = [s.pid for s in stack.status() if s.pid]
    rss = RssSampler(pids)
    rss.start()

    stream = get_stream(config.stream, seed=config.seed)
    model = config.model_name or f"digits-{new_id()[:6]}"
    narrate(f"training version 1 of [bold]{model}[/bold] on concept '{stream.concepts[0]}' of stream '{stream.name}'")
    architecture = demo_architecture(stream, config.architecture, config.architecture_kwargs)
    artifact, offline_acc = train_first_version(stream, config.train_epochs, config.seed, architecture)
    narrate(f"version 1 ({architecture.factory}) reaches {offline_acc:.1%} on held-out '{stream.concepts[0]}' data; registering it in Triton")
    register_first_version(endpoints, model, artifact, list(stream.input_shape), [str(c) for c in range(stream.num_classes)],
                           architecture, stream_datatype(stream), config.hyperparameters)

    kafka_settings = KafkaSettings(bootstrap_servers=endpoints.kafka)
    observer = Observer(kafka_settings, model)
    observer.start()
    if not observer.ready.wait(60):
        raise DemoError("could not subscribe to the event topics within 60 s")
    client = ModelCIClient(kafka_settings, feedback_batch_size=100, feedback_linger_ms=100)
    traffic = Traffic(client, model, stream, config.rate, config.feedback_delay_s, config.seed)
    t0 = time.time()
    traffic.start()
    phases = [{"name": f"before: {stream.concepts[0]}", "start_s": 0.0, "concept": 0}]
    narrate(f"streaming {config.rate:.0f} requests/s with feedback {config.feedback_delay_s:.1f} s later")

    def live(seconds: float, until: Callable[[], bool] | None = None) -> bool:
        deadline = time.time() + seconds
        last = time.time()
        while time.time() < deadline:
            _check(traffic, observer)
            try:
                marker = observer.events.get(timeout=0.25)
                narrate(_describe(marker, t0))
            except Exception:
                pass
            if time.time() - last >= 2.0:
                last = time.time()
                window = [(s, observer.answers[r]) for r, s in traffic.recent(int(config.rate * 2)) if r in observer.answers]
                acc = rep.accuracy(window)
                if acc is not None:
                    narrate(f"  t={time.time() - t0:5.1f}s  live accuracy {acc:.1%}  serving v{max(a.version for _, a in window)}")
            if until is not None and until():
                return True
        return until is None

    live(config.warmup_s)
    drift_at = time.time()
    traffic.switch(1, "drift")
    phases.append({"name": f"drift: {stream.concepts[1]}", "start_s": drift_at - t0, "concept": 1})
    narrate(f"[red]concept switches to '{stream.concepts[1]}'[/red] at t={drift_at - t0:.1f}s")

    def new_version_serving() -> bool:
        return any(m.kind == "deployed" and (m.detail.get("version") or 0) > 1 and m.at >= drift_at for m in observer.markers)

    if not live(config.serve_timeout_s, new_version_serving):
        narrate(f"[red]no new version served within {config.serve_timeout_s:.0f} s of the switch[/red]")
    serving_marker = next((m for m in observer.markers if m.kind == "deployed" and (m.detail.get("version") or 0) > 1 and m.at >= drift_at), None)
    serving_at = serving_marker.at if serving_marker else None
    live(config.recovery_window_s)
    recur_at = time.time()
    traffic.switch(0, "recurring")
    phases.append({"name": f"recurring: {stream.concepts[0]}", "start_s": recur_at - t0, "concept": 0})
    narrate(f"concept returns to '{stream.concepts[0]}' at t={recur_at - t0:.1f}s (was it forgotten?)")
    live(config.recurring_s)
    traffic.stop()
    traffic.join(30)
    _check(traffic, observer)
    end = time.time() + config.drain_timeout_s
    while time.time() < end and any(r not in observer.answers for r in traffic.sent):
        time.sleep(0.2)
    observer.stop()
    observer.join(10)
    client.close()
    rss.stop()
    rss.join(5)

    pairs = rep.joined(traffic.sent, observer.answers)
    detected = next((m for m in observer.markers if m.kind == "drift" and m.at >= drift_at), None)
    false_alarms = [m for m in observer.markers if m.kind == "drift" and m.at < drift_at]
    before = [(s, a) for s, a in pairs if s.phase == "before" and s.sent_at - t0 >= config.warmup_s / 3]
    during = [(s, a) for s, a in pairs if s.phase == "drift" and a.version == 1]
    new_version = serving_marker.detail["version"] if serving_marker else None
    recovered = [(s, a) for s, a in pairs if s.phase == "drift" and new_version and a.version >= new_version]
    recurring = [(s, a) for s, a in pairs if s.phase == "recurring" and new_version and a.version >= new_version]
    update = next((m for m in observer.markers if m.kind == "candidate" and m.at >= drift_at and m.detail.get("outcome") == "succeeded"), None)
    latencies = np.asarray([a.latency_ms for _, a in pairs], dtype=np.float64)
    summary = {
        "model": model,
        "stream": stream.name,
        "drift_at": round(drift_at - t0, 3),
        "detected_at": round(detected.at - t0, 3) if detected else None,
        "serving_at": round(serving_at - t0, 3) if serving_at else None,
        "drift_to_serving_s": round(serving_at - drift_at, 3) if serving_at else None,
        "update_seconds": round(update.detail["train_seconds"], 3) if update else None,
        "accuracy_before": rep.accuracy(before),
        "accuracy_after_drift": rep.accuracy(during),
        "accuracy_recovered": rep.accuracy(recovered),
        "accuracy_recurring": rep.accuracy(recurring),
        "versions": sorted({a.version for _, a in pairs}),
        "updates": sum(1 for m in observer.markers if m.kind == "update" and m.at >= drift_at and (serving_at is None or m.at <= serving_at)),
        "false_drift_alarms": len(false_alarms),
        "requests": len(traffic.sent),
        "failed_requests": sum(1 for r in traffic.sent if r not in observer.answers),
        # From the request's publication (the client's sent_at_ms) to its prediction.
        "p50_ms": round(float(np.percentile(latencies, 50)), 2) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 2) if len(latencies) else None,
        "peak_rss_mb": round(rss.peak_mb, 1),
        "peak_rss_sum_mb": round(rss.peak_rss_sum_mb, 1),
        "up_seconds": round(up_seconds, 2) if up_seconds is not None else None,
    }
    full = {
        **summary,
        "config": config.__dict__,
        "phases": phases,
        "timeline": rep.marker_rows(observer.markers, t0),
        "series": rep.series(pairs, t0),
    }
    files = rep.write(full, report_dir)
    narrate(f"report written: {', '.join(str(f) for f in files)}")
    return summary


def _check(traffic: Traffic, observer: Observer) -> None:
    for part in (traffic, observer):
        if part.error is not None:
            raise DemoError(f"{part.name} failed: {part.error}") from part.error


def _describe(marker: Marker, t0: float) -> str:
    t = f"t={marker.at - t0:5.1f}s"
    d = marker.detail
    if marker.kind == "drift":
        return f"[yellow]{t}  drift detected[/yellow] by {d['detector']} on the {d['signal']} signal (v{d['version']})"
    if marker.kind == "update":
        return f"{t}  update requested ({d['reason']}) from v{d['base_version']}"
    if marker.kind == "candidate":
        if d["outcome"] == "succeeded":
            return f"{t}  candidate v{d['version']} trained in {d['train_seconds']:.1f} s"
        return f"[red]{t}  update failed: {d['reason']}[/red]"
    if marker.kind == "deployed":
        return f"[green]{t}  version {d['version']} serving[/green] (was v{d['previous_version']})"
    if marker.kind == "rejected":
        return f"[red]{t}  candidate v{d['version']} rejected: {'; '.join(d['reasons'])}[/red]"
    return f"{t}  {marker.kind} v{d.get('version')}"
