"""Triton's repository API and inference, with retries: the only module that talks to Triton.

Repository calls (load, unload, index) are retried with exponential backoff because Triton
restarting or briefly unreachable is a normal event during a publication; a call that still
fails raises `TritonUnavailable` (retryable), so the caller keeps the candidate unacknowledged
and tries again later instead of deciding anything.

Repository calls go over gRPC when a gRPC address is given: on Triton 2.51 an HTTP
``load_model`` held up every HTTP inference request, to any model, for the whole load (measured:
a client at 100 req/s to model A saw one request wait 3.8 s while model B loaded over HTTP, and
600 requests with a 62 ms maximum while it loaded over gRPC). Inference uses HTTP/REST through
httpx, which waits on sockets with the GIL released (``tritonclient.http`` runs on gevent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import numpy as np

from services.common.triton_errors import TritonLoadFailed, TritonRequestFailed, TritonUnavailable
from services.common.tensors import datatype_of

T = TypeVar("T")


class TritonOps:
    def __init__(self, url: str, retries: int = 6, backoff_s: float = 0.5, load_timeout_s: float = 120.0,
                 grpc_url: str | None = None) -> None:
        self.url = url if url.startswith("http") else f"http://{url}"
        self.grpc_url = grpc_url
        self._grpc = None
        self.retries = retries
        self.backoff_s = backoff_s
        self.load_timeout_s = load_timeout_s
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(self.load_timeout_s, connect=5.0))
        return self._client

    @property
    def grpc(self):
        if self._grpc is None:
            import tritonclient.grpc as grpcclient

            self._grpc = grpcclient.InferenceServerClient(self.grpc_url)
        return self._grpc

    def _repo(self, op: str, model: str | None = None) -> Any:
        """One repository call, over gRPC when configured (see the module docstring), else HTTP."""
        if self.grpc_url is None:
            path = "/v2/repository/index" if op == "index" else f"/v2/repository/models/{model}/{op}"
            return self._post(path)
        from tritonclient.utils import InferenceServerException

        try:
            if op == "index":
                return [
                    {"name": m.name, "version": m.version, "state": m.state}
                    for m in self.grpc.get_model_repository_index(client_timeout=self.load_timeout_s).models
                ]
            call = self.grpc.load_model if op == "load" else self.grpc.unload_model
            call(model, client_timeout=self.load_timeout_s)
            return None
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            if "UNAVAILABLE" in status or "DEADLINE" in status:
                self._grpc = None
                raise httpx.ConnectError(str(exc)) from exc  # retried like any transport failure
            raise TritonLoadFailed(str(exc)) from exc

    def close(self) -> None:
        if self._grpc is not None:
            self._grpc.close()
            self._grpc = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.post(path, json=body or {})
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise TritonLoadFailed(f"[{response.status_code}] {detail}")
        return response.json() if response.content else None

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        delay = self.backoff_s
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                return call()
            except TritonLoadFailed as exc:
                raise TritonLoadFailed(f"{what}: {exc}") from exc
            except httpx.TransportError as exc:  # refused, reset, timed out: Triton down or restarting
                last = exc
            if attempt < self.retries - 1:
                time.sleep(delay)  # backoff between attempts against a real server, not test sync
                delay = min(delay * 2, 8.0)
        raise TritonUnavailable(f"{what}: Triton at {self.url} unreachable after {self.retries} attempts: {last}")

    def live(self) -> bool:
        try:
            return self.client.get("/v2/health/live", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def load(self, model: str) -> float:
        """Loads (or reloads) ``model`` from its config on disk; returns the seconds it took."""
        start = time.perf_counter()
        self._retry(f"load {model}", lambda: self._repo("load", model))
        return time.perf_counter() - start

    def unload(self, model: str) -> None:
        self._retry(f"unload {model}", lambda: self._repo("unload", model))

    def index(self) -> list[dict]:
        return self._retry("repository index", lambda: self._repo("index")) or []

    def ready_versions(self, model: str) -> set[int]:
        """Versions of ``model`` that Triton's repository index says are READY."""
        return {
            int(entry["version"])
            for entry in self.index()
            if entry.get("name") == model and entry.get("state") == "READY" and str(entry.get("version", "")).isdigit()
        }

    def infer(self, model: str, features: np.ndarray, version: int | None = None) -> np.ndarray:
        """One real inference (pinned to ``version`` when given) of a batch in the model's own
        datatype (float64 is taken as FP32); raises on any failure."""
        batch = np.ascontiguousarray(features, dtype=np.float32) if features.dtype == np.float64 else np.ascontiguousarray(features)
        # The input goes as raw little-endian bytes (Triton's binary data extension): Triton's
        # JSON refuses FP16 ("receiving FP16 data via JSON is not supported"), and bytes are
        # what every datatype has in common.
        raw = batch.astype(batch.dtype.newbyteorder("<"), copy=False).tobytes()
        header = json.dumps({
            "inputs": [{"name": "INPUT__0", "shape": list(batch.shape), "datatype": datatype_of(batch), "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": "OUTPUT__0", "parameters": {"binary_data": False}}],
        }).encode()
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "") + "/infer"
        response = self.client.post(path, content=header + raw, headers={"Inference-Header-Content-Length": str(len(header)),
                                                                         "Content-Type": "application/octet-stream"})
        if response.status_code != 200:
            raise TritonRequestFailed(f"{model} v{version}: [{response.status_code}] {response.text[:300]}")
        out = response.json()["outputs"][0]
        return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])

    def confirm(self, model: str, version: int, features: np.ndarray, num_classes: int) -> np.ndarray:
        """A real inference against ``version``: the proof that Triton serves it."""

        def call() -> np.ndarray:
            try:
                out = self.infer(model, features, version)
            except TritonRequestFailed as exc:
                raise TritonLoadFailed(str(exc)) from exc
            if out.shape != (len(features), num_classes) or not np.isfinite(out).all():
                raise TritonLoadFailed(f"{model} v{version} answered with shape {out.shape} or non-finite values")
            return out

        return self._retry(f"confirm {model} v{version}", call)

    def p99_pair_ms(self, a: tuple[str, int | None], b: tuple[str, int | None], features: np.ndarray, requests: int) -> tuple[float, float]:
        """p99 latency of batch-1 requests to two model versions, sent alternately by one client.

        Alternating (a, b, a, b, ...) rather than timing one version and then the other: on a
        busy machine the load changes between two back-to-back phases (a GC, a compaction, a
        neighbour's burst), and a comparison of two phases measures that change as much as the
        models. Alternation gives both versions the same machine, request by request."""
        rows = np.asarray(features)
        for i in range(min(10, requests)):  # warm-up: a fresh backend's first calls are slow
            for model, version in (a, b):
                self.infer(model, rows[i % len(rows) : i % len(rows) + 1], version)
        timings: tuple[list[float], list[float]] = ([], [])
        for i in range(requests):
            row = rows[i % len(rows) : i % len(rows) + 1]
            for (model, version), out in zip((a, b) if i % 2 == 0 else (b, a), timings if i % 2 == 0 else timings[::-1]):
                start = time.perf_counter()
                self.infer(model, row, version)
                out.append((time.perf_counter() - start) * 1000)
        return float(np.percentile(timings[0], 99)), float(np.percentile(timings[1], 99))

    def p99_ms(self, model: str, version: int | None, features: np.ndarray, requests: int) -> float:
        """p99 latency of batch-1 requests on a probe load (sequential, one client)."""
        rows = np.asarray(features)
        for i in range(min(10, requests)):  # warm-up: a fresh backend's first calls are slow
            self.infer(model, rows[i % len(rows) : i % len(rows) + 1], version)
        timings = []
        for i in range(requests):
            start = time.perf_counter()
            self.infer(model, rows[i % len(rows) : i % len(rows) + 1], version)
            timings.append((time.perf_counter() - start) * 1000)
        return float(np.percentile(timings, 99))
