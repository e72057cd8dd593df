"""Triton's repository API and inference, with retries: the only module that talks to Triton.

Repository calls (load, unload, index) are retried with exponential backoff because Triton
restarting or briefly unreachable is a normal event during a publication; a call that still
fails raises `TritonUnavailable` (retryable), so the caller keeps the candidate unacknowledged
and tries again later instead of deciding anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from services.common.errors import ModelCIError, TransientError

T = TypeVar("T")


class TritonUnavailable(TransientError):
    reason = "triton_unavailable"


class TritonLoadFailed(ModelCIError):
    """Triton answered but refused the model (bad config, backend error): not retryable."""

    reason = "triton_load_failed"


def _is_connection_error(exc: Exception) -> bool:
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("connection refused", "connection reset", "timed out", "broken pipe", "unavailable"))


class TritonOps:
    def __init__(self, url: str, retries: int = 6, backoff_s: float = 0.5, load_timeout_s: float = 120.0) -> None:
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.load_timeout_s = load_timeout_s
        self._client: httpclient.InferenceServerClient | None = None

    @property
    def client(self) -> httpclient.InferenceServerClient:
        if self._client is None:
            self._client = httpclient.InferenceServerClient(
                self.url, connection_timeout=self.load_timeout_s, network_timeout=self.load_timeout_s
            )
        return self._client

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        delay = self.backoff_s
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                return call()
            except InferenceServerException as exc:
                if not _is_connection_error(exc):
                    raise TritonLoadFailed(f"{what}: {exc}") from exc
                last = exc
            except Exception as exc:  # socket errors surface as several unrelated types
                if not _is_connection_error(exc):
                    raise
                last = exc
            self._client = None
            if attempt < self.retries - 1:
                time.sleep(delay)  # backoff between attempts against a real server, not test sync
                delay = min(delay * 2, 8.0)
        raise TritonUnavailable(f"{what}: Triton at {self.url} unreachable after {self.retries} attempts: {last}")

    def live(self) -> bool:
        try:
            return bool(self.client.is_server_live())
        except Exception:
            self._client = None
            return False

    def load(self, model: str) -> float:
        """Loads (or reloads) ``model`` from its config on disk; returns the seconds it took."""
        start = time.perf_counter()
        self._retry(f"load {model}", lambda: self.client.load_model(model))
        return time.perf_counter() - start

    def unload(self, model: str) -> None:
        self._retry(f"unload {model}", lambda: self.client.unload_model(model))

    def ready_versions(self, model: str) -> set[int]:
        """Versions of ``model`` that Triton's repository index says are READY."""
        index = self._retry("repository index", lambda: self.client.get_model_repository_index())
        return {
            int(entry["version"])
            for entry in index
            if entry.get("name") == model and entry.get("state") == "READY" and str(entry.get("version", "")).isdigit()
        }

    def index(self) -> list[dict]:
        return self._retry("repository index", lambda: self.client.get_model_repository_index())

    def infer(self, model: str, features: np.ndarray, version: int | None = None) -> np.ndarray:
        """One real inference (pinned to ``version`` when given); raises on any failure."""
        batch = np.ascontiguousarray(features, dtype=np.float32)
        inp = httpclient.InferInput("INPUT__0", list(batch.shape), "FP32")
        inp.set_data_from_numpy(batch)
        out = httpclient.InferRequestedOutput("OUTPUT__0")
        result = self.client.infer(model, [inp], model_version="" if version is None else str(version), outputs=[out])
        return result.as_numpy("OUTPUT__0")

    def confirm(self, model: str, version: int, features: np.ndarray, num_classes: int) -> np.ndarray:
        """A real inference against ``version``: the proof that Triton serves it."""

        def call() -> np.ndarray:
            out = self.infer(model, features, version)
            if out.shape != (len(features), num_classes) or not np.isfinite(out).all():
                raise TritonLoadFailed(f"{model} v{version} answered with shape {out.shape} or non-finite values")
            return out

        return self._retry(f"confirm {model} v{version}", call)

    def p99_ms(self, model: str, version: int | None, features: np.ndarray, requests: int) -> float:
        """p99 latency of batch-1 requests on a probe load (sequential, one client)."""
        rows = np.ascontiguousarray(features, dtype=np.float32)
        for i in range(min(10, requests)):  # warm-up: a fresh backend's first calls are slow
            self.infer(model, rows[i % len(rows) : i % len(rows) + 1], version)
        timings = []
        for i in range(requests):
            start = time.perf_counter()
            self.infer(model, rows[i % len(rows) : i % len(rows) + 1], version)
            timings.append((time.perf_counter() - start) * 1000)
        return float(np.percentile(timings, 99))
