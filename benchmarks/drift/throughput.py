"""``modelci bench drift``: events per second through the drift service vs a bare consumer.

1. Publish N prediction and N feedback events for a few models (64 features, the demo's width),
   in batches of ``batch`` per Kafka record (as the inference service and the client library
   publish them), feedback trailing its predictions by ``lag_batches`` batches. Every model's
   error rate jumps half way (``drift``), so the detectors fire and the update-request and
   outbox paths run, as in production.
2. Run the bare consumer (`raw_consumer`, its own process pinned to one core) over them twice:
   with the drift service's own compiled reader (``raw_scan_eps``: the baseline of ``ratio``,
   the same reader doing the same decoding) and decoding every field with the serde
   (``raw_consumer_eps``, the baseline of ``ratio_serde``: a weaker consumer, kept as a second line).
3. Run one drift worker (``python -m services.drift``, its own process on the same core) over
   the same topics and read from its /metrics when it handled its first and its last record:
   ``drift_eps`` is 2N events over that time (joins, detectors, sample publication included).

CPU per event (``cpu_us_per_event``) of every process that does the work: the worker, Redis (the
joins run there) and the broker, each over the worker's window, and the bare consumers with the
broker over theirs; ``cpu_ratio`` = all of the bare consumer's side ÷ all of the service's. Redis
and the broker are counted only when the benchmark started them (not for configured endpoints).

With ``profile=True`` the worker runs under pyinstrument (``reports/drift-profile.txt``), with
``profile="cprofile"`` under cProfile timed by CPU (``reports/drift-profile.pstats``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from infra.local.process import free_port
from services.common.kafka import ensure_topics
from services.common.topics import FEEDBACK, PREDICTIONS
from benchmarks.drift.stack import REPO, endpoints
from benchmarks.drift.workload import Traffic, TrafficPublisher
from services.drift.settings import DriftSettings
from services.drift.worker import topic_plan


def _env(kafka, redis, metrics_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MODELCI_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "MODELCI_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "MODELCI_REDIS_URL": redis.url.get_secret_value(),
            "MODELCI_REDIS_KEY_PREFIX": redis.key_prefix,
            "MODELCI_METRICS_PORT": str(metrics_port),
            "MODELCI_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    return env


def _pin(cpu: int | None):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def _metric(values: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def _mean(values: dict[str, float], histogram: str) -> float | None:
    """Mean of a Prometheus histogram over all its label sets."""
    count = _metric(values, histogram + "_count")
    return round(_metric(values, histogram + "_sum") / count, 4) if count else None


N_FEATURES = 64
"""Features per prediction: the demo's digits."""
ERROR_BEFORE, ERROR_AFTER = 0.1, 0.5
"""Each model's error rate before and after half of its events."""


def _cpu_of(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            continue
    return out


def _per_event(start: dict[str, float], end: dict[str, float], events: float) -> dict[str, float]:
    return {k: round((end[k] - start[k]) / events * 1e6, 2) for k in start if k in end and events > 0}


def run(
    events: int,
    batch: int = 100,
    models: int = 4,
    lag_batches: int = 20,
    cpu: int | None = None,
    profile: bool | str = False,
    reports: Path = Path("reports"),
    timeout_s: float = 600.0,
) -> dict:
    cpu = (os.cpu_count() or 1) - 1 if cpu is None else cpu
    tag = uuid.uuid4().hex[:8]
    reports.mkdir(parents=True, exist_ok=True)
    with endpoints(f"bench{tag}.", f"bench{tag}:") as ep:
        settings = DriftSettings(kafka=ep.kafka, redis=ep.redis)
        ensure_topics(ep.kafka, topic_plan(settings))
        publisher = TrafficPublisher(ep.kafka)
        per_model = events // models
        total = per_model * models
        started = time.perf_counter()
        for m in range(models):
            traffic = Traffic(model=f"bench-{m}", events=per_model, seed=m, n_features=N_FEATURES, error_before=ERROR_BEFORE,
                              error_after=ERROR_AFTER, switch_at=per_model // 2)
            publisher.interleaved(traffic, batch=batch, lag_batches=lag_batches)
        publisher.flush(120)
        publish_s = time.perf_counter() - started

        # The bare consumer, decoding with the serde (the baseline), then with the service's reader.
        raw_results = {}
        servers = {k: v for k, v in ep.pids.items() if k == "kafka"}  # a bare consumer uses no Redis
        for decoder in ("serde", "scan"):
            before = _cpu_of(servers)
            raw = subprocess.run(
                [sys.executable, "-m", "benchmarks.drift.raw_consumer", str(2 * total), decoder],
                env=_env(ep.kafka, ep.redis, 0),
                capture_output=True,
                text=True,
                preexec_fn=_pin(cpu),
                timeout=timeout_s,
            )
            if raw.returncode != 0:
                raise RuntimeError(f"raw consumer ({decoder}) failed: {raw.stderr[-2000:]}")
            raw_results[decoder] = json.loads(raw.stdout.strip().splitlines()[-1])
            raw_results[decoder]["servers_cpu_us_per_event"] = _per_event(before, _cpu_of(servers), 2 * total)
        raw_result, scan_result = raw_results["serde"], raw_results["scan"]

        # The drift worker.
        port = free_port()
        argv = [sys.executable]
        profile_file = reports / "drift-profile.txt"
        if profile == "cprofile":
            profile_file = reports / "drift-profile.pstats"
            argv += ["-m", "benchmarks.drift.cpuprofile", str(profile_file)]
        elif profile:
            argv += ["-m", "pyinstrument", "--renderer", "text", "--outfile", str(profile_file), "-m", "services.drift"]
        else:
            argv += ["-m", "services.drift"]
        log_file = reports / "drift-bench-worker.log"
        with open(log_file, "w") as log:
            proc = subprocess.Popen(argv, env=_env(ep.kafka, ep.redis, port), stdout=log, stderr=subprocess.STDOUT, preexec_fn=_pin(cpu))
            try:
                deadline = time.monotonic() + timeout_s
                handled = 0.0
                values: dict[str, float] = {}
                cpu_start = cpu_end = None
                while time.monotonic() < deadline:
                    if proc.poll() is not None:
                        raise RuntimeError(f"drift worker exited with {proc.returncode}; see {log_file}")
                    try:
                        values = scrape(port)
                    except OSError:
                        time.sleep(0.5)
                        continue
                    handled = _metric(values, "modelci_drift_events_in_total")
                    if cpu_start is None and handled > 0:
                        cpu_start = (cpu_seconds(proc.pid), handled, _cpu_of(ep.pids))
                    if handled >= 2 * total:
                        cpu_end = (cpu_seconds(proc.pid), handled, _cpu_of(ep.pids))
                        break
                    time.sleep(0.2)
                first = values.get("modelci_drift_first_record_timestamp_seconds", 0.0)
                last = max(
                    _metric(values, "modelci_drift_last_record_timestamp_seconds", topic=PREDICTIONS),
                    _metric(values, "modelci_drift_last_record_timestamp_seconds", topic=FEEDBACK),
                )
                joined = _metric(values, "modelci_drift_join_total", outcome="hit")
                drifts = _metric(values, "modelci_drift_detections_total")
                requests = _metric(values, "modelci_drift_update_requests_total")
                parked = _metric(values, "modelci_drift_join_total", outcome="miss")
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        drift_s = last - first
        cpu_per_event = None
        service_cpu: dict[str, float] = {}
        if cpu_start and cpu_end and cpu_end[1] > cpu_start[1]:
            counted = cpu_end[1] - cpu_start[1]
            cpu_per_event = (cpu_end[0] - cpu_start[0]) / counted
            service_cpu = {"worker": round(cpu_per_event * 1e6, 2), **_per_event(cpu_start[2], cpu_end[2], counted)}
        drift_eps = handled / drift_s if drift_s > 0 else 0.0
        scan_cpu = {"consumer": round(scan_result["cpu_us_per_event"], 2), **scan_result["servers_cpu_us_per_event"]}
        serde_cpu = {"consumer": round(raw_result["cpu_us_per_event"], 2), **raw_result["servers_cpu_us_per_event"]}
        service_total, scan_total = sum(service_cpu.values()), sum(scan_cpu.values())
        result = {
            "events": 2 * total,
            "drift_eps": round(drift_eps),
            "raw_scan_eps": round(scan_result["eps"]),
            "ratio": round(drift_eps / scan_result["eps"], 3) if scan_result["eps"] else 0.0,
            "raw_consumer_eps": round(raw_result["eps"]),
            "ratio_serde": round(drift_eps / raw_result["eps"], 3) if raw_result["eps"] else 0.0,
            "cpu_us_per_event": {"service": {**service_cpu, "total": round(service_total, 2)},
                                 "bare_consumer_scan": {**scan_cpu, "total": round(scan_total, 2)},
                                 "bare_consumer_serde": {**serde_cpu, "total": round(sum(serde_cpu.values()), 2)}},
            "cpu_ratio": round(scan_total / service_total, 3) if service_total else None,
            "cpu_counted": sorted(ep.pids) or "the worker and the consumers only (configured Redis and broker)",
            "pairs": total,
            "batch": batch,
            "models": models,
            "n_features": N_FEATURES,
            "error_rate_before_after": [ERROR_BEFORE, ERROR_AFTER],
            "joined": int(joined),
            "parked": int(parked),
            "drift_events": int(drifts),
            "update_requests": int(requests),
            "drift_seconds": round(drift_s, 3),
            "drift_cpu_us_per_event": round(cpu_per_event * 1e6, 2) if cpu_per_event else None,
            "raw_seconds": round(raw_result["seconds"], 3),
            "raw_cpu_us_per_event": round(raw_result["cpu_us_per_event"], 2),
            "raw_scan_cpu_us_per_event": round(scan_result["cpu_us_per_event"], 2),
            "records_per_step": _mean(values, "modelci_drift_take_records"),
            "step_seconds": _mean(values, "modelci_drift_step_seconds"),
            "publish_seconds": round(publish_s, 3),
            "broker": ep.broker,
            "cpu": cpu,
        }
        if profile:
            result["profile"] = str(profile_file)
            if profile != "cprofile":
                result["hot_spots"] = hot_spots(profile_file)
        (reports / "drift-bench.json").write_text(json.dumps(result, indent=2))
        return result


def hot_spots(profile_file: Path, top: int = 12) -> list[str]:
    """The heaviest lines of a pyinstrument text report (its own time-ordered tree)."""
    try:
        text = profile_file.read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        m = re.match(r"^[\s│├└─]*([\d.]+)\s+(\S+)\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), f"{m.group(2)} {m.group(3).strip()}"))
    rows.sort(key=lambda r: -r[0])
    return [f"{t:.2f}s {name}" for t, name in rows[:top]]
