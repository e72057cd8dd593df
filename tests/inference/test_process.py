"""``python -m services.inference`` as operators run it: settings from the environment,
/metrics served, and a graceful stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from infra.local.process import free_port
from services.common.client import ModelCIClient
from services.common.events import PredictionBatch
from services.common.topics import PREDICTIONS
from tests.inference.conftest import FEATURES, TopicReader, make_model, publish_model

REPO = Path(__file__).resolve().parents[2]


def test_the_service_runs_from_the_environment_and_stops_on_sigterm(kafka_settings, triton_settings, model_name, tmp_path):
    publish_model(triton_settings.model_repository, triton_settings.http_url, model_name, 1, make_model(seed=4))
    port = free_port()
    env = {
        **os.environ,
        "MODELCI_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "MODELCI_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "MODELCI_TRITON_GRPC_URL": triton_settings.grpc_url,
        "MODELCI_INFERENCE_GROUP_ID": f"proc-{uuid.uuid4().hex[:8]}",
        "MODELCI_INFERENCE_STATISTICS_INTERVAL_MS": "500",
        "MODELCI_METRICS_PORT": str(port),
    }
    log = open(tmp_path / "inference.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.inference"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with ModelCIClient(kafka_settings) as client:
            sent = {client.request(model_name, [float(i)] * FEATURES).request_id for i in range(20)}
        reader = TopicReader(kafka_settings, kafka_settings.topic(PREDICTIONS), PredictionBatch)
        batches = reader.read_until(lambda b: sum(len(x.items) for x in b) >= len(sent))
        reader.close()
        assert {p.request_id for b in batches for p in b.items} == sent

        deadline = time.monotonic() + 20
        while "modelci_inference_consumer_lag{" not in (text := httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text):
            assert time.monotonic() < deadline, "no consumer-lag gauge on /metrics"
            time.sleep(0.2)
        assert 'modelci_inference_events_in_total{outcome="ok"' in text

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        print((tmp_path / "inference.log").read_text()[-4000:])  # shown by pytest when the test fails
    output = (tmp_path / "inference.log").read_text()
    assert '"event": "inference_stopped"' in output and '"uncommitted": 0' in output, output[-2000:]
