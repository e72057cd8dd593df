"""A client that sends unpinned requests to Triton in a loop, counting answers and failures.

Used by the zero-downtime test and by ``modelci bench deploy``: what a user of the model sees
while versions are switched under it. It speaks Triton's HTTP/REST protocol with httpx (see
``triton_ops`` for why not gevent-based ``tritonclient`` inside a multi-threaded process).
"""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np


class LoadClient(threading.Thread):
    def __init__(self, url: str, model: str, dim: int, rate: float = 0.0) -> None:
        super().__init__(name="load-client", daemon=True)
        self.url = url if url.startswith("http") else f"http://{url}"
        self.model, self.dim = model, dim
        self.rate = rate  # requests/s; 0 sends back to back
        self.stop_event = threading.Event()
        self.ok = 0
        self.failed: list[str] = []
        self.latencies: list[tuple[float, float]] = []  # (wall time at the start, seconds)

    def run(self) -> None:
        x = np.random.default_rng(0).normal(size=(1, self.dim)).astype(np.float32)
        body = {"inputs": [{"name": "INPUT__0", "shape": [1, self.dim], "datatype": "FP32", "data": x.ravel().tolist()}]}
        path = f"/v2/models/{self.model}/infer"
        next_at = time.perf_counter()
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop_event.is_set():
                if self.rate > 0:
                    next_at += 1.0 / self.rate
                    pause = next_at - time.perf_counter()
                    if pause > 0:
                        self.stop_event.wait(pause)  # pacing a steady load, not synchronisation
                wall, start = time.time(), time.perf_counter()
                try:
                    response = client.post(path, json=body)
                    if response.status_code != 200:
                        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:150]}")
                    data = response.json()["outputs"][0]["data"]
                    if not data or not np.isfinite(data).all():
                        raise ValueError("no or non-finite output")
                    self.ok += 1
                except Exception as exc:
                    self.failed.append(f"{type(exc).__name__}: {exc}"[:200])
                self.latencies.append((wall, time.perf_counter() - start))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)
