"""The inference worker keeps every request across a Triton restart.

Runs its own Triton (the session's server is shared with other suites and must not be
stopped): stopped mid-stream while requests keep coming, started again, the model reloaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.http as httpclient

from infra.local.process import free_port
from infra.local.settings import InfraSettings
from infra.local.triton import Triton
from services.common.client import ModelCIClient
from services.common.events import PredictionBatch
from services.common.settings import TritonSettings
from services.common.topics import PREDICTIONS
from services.inference.metrics import InferenceMetrics
from tests.inference.conftest import FEATURES, TopicReader, inference_settings, make_model, predictions_by_request, publish_model, running_worker

REPO = Path(__file__).resolve().parents[2]
MAX_REQUESTS = 6000  # the stream stops earlier, once the model is back


@pytest.fixture(scope="module")
def own_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    settings = InfraSettings(
        run_dir=tmp_path_factory.mktemp("inference-triton"),
        tools_dir=REPO / ".modelci" / "tools",
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
    )
    triton = Triton(settings)
    triton.start()
    try:
        yield triton
    finally:
        triton.stop()


@pytest.fixture(scope="module")
def restart_model(own_triton: Triton) -> str:
    """One model for both protocols (each load costs seconds): loaded again after every restart."""
    name = "mlp_restart"
    http_url = f"127.0.0.1:{own_triton.settings.triton_http_port}"
    publish_model(own_triton.model_repository, http_url, name, 1, make_model(seed=3))
    return name


def load(http_url: str, model: str) -> None:
    client = httpclient.InferenceServerClient(http_url, network_timeout=60.0)
    try:
        client.load_model(model)
    finally:
        client.close()


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_every_request_survives_a_triton_restart(kafka_settings, own_triton, restart_model, protocol):
    model_name = restart_model
    s = own_triton.settings
    http_url = f"127.0.0.1:{s.triton_http_port}"
    triton = TritonSettings(http_url=http_url, grpc_url=f"127.0.0.1:{s.triton_grpc_port}", model_repository=str(own_triton.model_repository))
    metrics = InferenceMetrics()
    settings = inference_settings(kafka_settings, triton, triton_protocol=protocol, batch_size=16, retry_max_ms=300)

    def retries(kind: str = "unavailable") -> float:
        return metrics.registry.get_sample_value("modelci_inference_triton_retries_total", {"kind": kind}) or 0

    def not_ready() -> float:
        return retries("model_not_ready") + retries("model_missing")

    with running_worker(settings, metrics), ModelCIClient(kafka_settings) as client:
        sent: list[str] = []
        enough = threading.Event()

        def stream() -> None:  # a steady stream that does not care whether Triton is up
            while not enough.is_set() and len(sent) < MAX_REQUESTS:
                sent.append(client.request(model_name, [float(len(sent) % 7)] * FEATURES).request_id)
                time.sleep(0.005)
            client.flush()

        producer = threading.Thread(target=stream)
        producer.start()
        reader = TopicReader(kafka_settings, kafka_settings.topic(PREDICTIONS), PredictionBatch)
        try:
            reader.read_until(lambda b: sum(len(x.items) for x in b) >= 100)
            own_triton.stop()
            wait_for(lambda: retries() >= 3, 30, "retries against the stopped server")
            own_triton.start()  # explicit model control: it comes back with nothing loaded
            wait_for(lambda: not_ready() >= 1, 30, "requests meeting the model not loaded yet")
            load(http_url, model_name)
            time.sleep(0.5)  # the stream goes on a little after the model is back
        finally:
            enough.set()
            producer.join(60)
            if own_triton.pid() is None:  # leave the module's server as we found it
                own_triton.start()
                load(http_url, model_name)
        batches = reader.read_until(lambda b: len({p.request_id for x in b for p in x.items}) >= len(sent), timeout_s=60)
        reader.close()

    got = predictions_by_request(batches)
    assert set(got) == set(sent), f"{len(set(sent) - set(got))} of {len(sent)} requests lost"
    assert all(len(v) == 1 for v in got.values()), "no worker restart, so no request may be answered twice"
