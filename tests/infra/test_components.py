"""Redis, Triton and Prometheus, each the real process started by the shared fixtures."""

from __future__ import annotations

import time

import httpx
import numpy as np
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client import CollectorRegistry, Counter

from infra.local.process import wait_until
from services.common.metrics import serve
from services.common.settings import RedisSettings, TritonSettings
from services.common.triton_repo import ModelSpec, write_configs, write_version


def test_redis_round_trip_with_ttl(redis_settings: RedisSettings):
    client = redis_settings.client()
    key = f"{redis_settings.key_prefix}join:r1"
    client.set(key, b"\x00\x01payload", px=60_000)
    assert client.get(key) == b"\x00\x01payload"
    assert 0 < client.pttl(key) <= 60_000
    assert client.getdel(key) == b"\x00\x01payload"
    assert client.exists(key) == 0


class _Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def test_triton_serves_torchscript_with_the_same_numbers_as_torch(triton_settings: TritonSettings, tmp_path):
    model = _Mlp().eval()
    scripted = torch.jit.script(model)
    path = tmp_path / "model.pt"
    scripted.save(str(path))
    repo = triton_settings.model_repository
    spec = ModelSpec(name="infra_mlp", input_shape=(8,), num_classes=3)
    write_configs(repo, spec)
    write_version(repo, spec.name, 1, path)

    client = httpclient.InferenceServerClient(triton_settings.http_url)
    client.load_model(spec.name)
    assert client.is_model_ready(spec.name)

    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()

    inp = httpclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer(spec.name, [inp], outputs=[httpclient.InferRequestedOutput("OUTPUT__0")])
    np.testing.assert_allclose(result.as_numpy("OUTPUT__0"), expected, rtol=1e-5, atol=1e-6)
    assert result.get_response()["model_version"] == "1"

    g = grpcclient.InferenceServerClient(triton_settings.grpc_url)
    ginp = grpcclient.InferInput("INPUT__0", list(x.shape), "FP32")
    ginp.set_data_from_numpy(x)
    gres = g.infer(spec.name, [ginp])
    np.testing.assert_allclose(gres.as_numpy("OUTPUT__0"), expected, rtol=1e-5, atol=1e-6)

    metrics = httpx.get(triton_settings.metrics_url, timeout=5).text
    assert 'nv_inference_request_success{model="infra_mlp",version="1"}' in metrics
    client.unload_model(spec.name)


def test_prometheus_scrapes_a_process_metrics_endpoint(prometheus_server):
    registry = CollectorRegistry()
    counter = Counter("modelci_test_events", "Events seen by the test process.", registry=registry)
    counter.inc(7)
    port = serve(registry)
    prometheus_server.add_target("infra-test", f"127.0.0.1:{port}")

    def scraped() -> bool:
        r = httpx.get(f"{prometheus_server.address()}/api/v1/query", params={"query": 'modelci_test_events_total{service="infra-test"}'}, timeout=2)
        data = r.json()["data"]["result"]
        return bool(data) and float(data[0]["value"][1]) == 7.0

    started = time.monotonic()
    wait_until(scraped, 60, "prometheus scrape of the test target")
    assert time.monotonic() - started < 60
