"""``modelci console bench``: how fast the console shows what happens and answers its users.

Starts a private Apache Kafka and Redis (free ports, temporary folder), runs the console in
this process, and measures on them:

- live latency: a drift event produced on ``cl.drift`` until its server-sent event reaches an
  HTTP client (the path a browser's page update takes, minus rendering);
- API latency: ``GET /api/v1/models`` and ``GET /api/v1/models/{name}`` with a bearer token;
- action latency: ``PUT /api/v1/models/{name}/policy`` until the command is acknowledged by
  the broker and audited;
- reader throughput: labeled-sample batches folded into live accuracy per second.

Prints JSON and writes ``console_bench.json`` and ``console_bench.png`` under ``out_dir``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": _pct(ms, 0.5), "p99_ms": _pct(ms, 0.99), "mean_ms": round(statistics.fmean(ms), 2)}


def run(events: int = 100, requests: int = 300, batches: int = 1000, batch_size: int = 50, out_dir: Path = Path("reports")) -> dict[str, Any]:
    from infra.local.kafka import ApacheKafka
    from infra.local.process import free_port, wait_until
    from infra.local.redis import Redis
    from infra.local.settings import InfraSettings
    from services.common import kafka, topics
    from services.common.events import DriftEvent, LabeledSample, LabeledSampleBatch
    from services.common.registry import ModelRecord, ModelRegistry, VersionRecord
    from services.common.serde import encode_event
    from services.common.settings import KafkaSettings, RedisSettings
    from services.console.app import build_state, create_app
    from services.console.roles import Role
    from services.console.settings import ConsoleSettings
    import uvicorn

    from benchmarks import REPO as repo
    with tempfile.TemporaryDirectory(prefix="modelci-console-bench-") as tmp:
        infra = InfraSettings(run_dir=Path(tmp), tools_dir=repo / ".modelci" / "tools", kafka_port=free_port(),
                              kafka_controller_port=free_port(), redis_port=free_port())
        broker, redis_server = ApacheKafka(infra), Redis(infra)
        broker.start()
        redis_server.start()
        try:
            settings = ConsoleSettings(kafka=KafkaSettings(bootstrap_servers=broker.address(), topic_prefix="bench."),
                                       redis=RedisSettings(url=redis_server.address(), key_prefix="bench:"),
                                       group_id=f"console-bench-{uuid.uuid4().hex[:6]}", poll_timeout_s=0.1,
                                       live_min_interval_s=0.0)
            state = build_state(settings)
            app = create_app(settings, state)
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            wait_until(lambda: server.started, 60, "the console")
            wait_until(state.reader.ready.is_set, 90, "the console's reader")
            url = f"http://127.0.0.1:{port}"
            registry = ModelRegistry(state.redis, "bench:")
            registry.put_model(ModelRecord(name="bench", input_shape=[16], classes=list("abcd"), serving_version=20, previous_version=19))
            for v in range(1, 21):
                registry.put_version(VersionRecord(model="bench", version=v, status="serving" if v == 20 else "retired",
                                                   base_version=v - 1 or None, metrics={"new_accuracy": 0.9}))
            state.auth.add_user("bench", Role.OPERATOR, "bench-password")
            _, token = state.auth.create_token("bench")
            http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            producer = kafka.producer(settings.kafka)

            # live latency -------------------------------------------------------------------
            sent: dict[str, float] = {}
            received: dict[str, float] = {}
            connected = threading.Event()

            def listen() -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=None) as c, \
                        c.stream("GET", "/api/v1/events") as resp:
                    kind = None
                    for line in resp.iter_lines():
                        if line.startswith("event: "):
                            kind = line[7:]
                            if kind == "hello":
                                connected.set()
                        elif line.startswith("data: ") and kind == "drift":
                            received[json.loads(line[6:])["data"]["event_id"]] = time.perf_counter()
                            if len(received) >= events:
                                return

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            connected.wait(30)
            for i in range(events):
                ev = DriftEvent(model="bench", version=20, detector="adwin", signal="error", statistics={"e": 0.1},
                                topic="cl.samples", partition=0, offset=i, observations=100)
                sent[ev.event_id] = time.perf_counter()
                producer.produce(settings.kafka.topic(topics.DRIFT), key=b"bench", value=encode_event(ev))
                producer.flush(10)
                time.sleep(0.05)  # paced like real drift events (rare), not a flood
            listener.join(60)
            live_ms = [(received[k] - sent[k]) * 1000 for k in sent if k in received]

            # API and action latency ------------------------------------------------------------
            def timed(fn) -> list[float]:
                out = []
                for _ in range(requests):
                    t = time.perf_counter()
                    response = fn()
                    out.append((time.perf_counter() - t) * 1000)
                    response.raise_for_status()
                return out

            list_ms = timed(lambda: http.get("/api/v1/models"))
            detail_ms = timed(lambda: http.get("/api/v1/models/bench"))
            action_ms = timed(lambda: http.put("/api/v1/models/bench/policy", json={"policy": {"promotion": "manual"}}))

            # reader throughput -----------------------------------------------------------------
            values = []
            for b in range(batches):
                items = [LabeledSample(sample_id=f"{b}-{i}", model_version=20, features=[0.0], label=i % 4, predicted=(i * 7) % 4,
                                       confidence=0.5, prediction_partition=0, prediction_offset=i, feedback_partition=0,
                                       feedback_offset=i) for i in range(batch_size)]
                values.append(encode_event(LabeledSampleBatch(model="bench", items=items)))
            for v in values:
                producer.produce(settings.kafka.topic(topics.SAMPLES), key=b"bench", value=v)
            kafka.flush(producer, 60)
            t0 = time.perf_counter()
            total_key = "bench:console:accuracy:bench"
            wait_until(lambda: int(state.redis.hget(total_key, "total:20") or 0) >= batches * batch_size, 300, "all samples counted")
            reader_s = time.perf_counter() - t0
            http.close()
            server.should_exit = True
            thread.join(30)
        finally:
            redis_server.stop()
            broker.stop()

    report = {
        "live_latency": _summary(live_ms),
        "api_list_models": _summary(list_ms),
        "api_model_detail": _summary(detail_ms),
        "action_set_policy": _summary(action_ms),
        "reader": {"batches": batches, "batch_size": batch_size, "seconds": round(reader_s, 2),
                   "batches_per_s": round(batches / reader_s, 1), "samples_per_s": round(batches * batch_size / reader_s)},
        "note": "includes the queue of produced-but-unread batches; measured on the machine's shared cores",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "console_bench.json").write_text(json.dumps(report, indent=2))
    _plot(out_dir / "console_bench.png", {"live (Kafka→SSE)": live_ms, "GET models": list_ms, "GET model": detail_ms,
                                          "PUT policy (→Kafka ack)": action_ms})
    return report


def _plot(path: Path, series: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.boxplot(list(series.values()), showfliers=False)
    ax.set_xticks(range(1, len(series) + 1), list(series.keys()), fontsize=8)
    ax.set_ylabel("milliseconds")
    ax.set_title("ModelCI-e console: live-update and API latency")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
