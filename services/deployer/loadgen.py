"""A client that sends unpinned requests to Triton in a loop, counting answers and failures.

Used by the zero-downtime test and by ``modelci bench deploy``: what a user of the model sees
while versions are switched under it.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import tritonclient.http as httpclient


class LoadClient(threading.Thread):
    def __init__(self, url: str, model: str, dim: int, rate: float = 0.0) -> None:
        super().__init__(name="load-client", daemon=True)
        self.url, self.model, self.dim = url, model, dim
        self.rate = rate  # requests/s; 0 sends back to back
        self.stop_event = threading.Event()
        self.ok = 0
        self.failed: list[str] = []
        self.latencies: list[tuple[float, float]] = []  # (wall time, seconds)

    def run(self) -> None:
        client = httpclient.InferenceServerClient(self.url, network_timeout=60)
        x = np.random.default_rng(0).normal(size=(1, self.dim)).astype(np.float32)
        next_at = time.perf_counter()
        while not self.stop_event.is_set():
            if self.rate > 0:
                next_at += 1.0 / self.rate
                pause = next_at - time.perf_counter()
                if pause > 0:
                    self.stop_event.wait(pause)  # pacing a steady load, not synchronisation
            inp = httpclient.InferInput("INPUT__0", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            start = time.perf_counter()
            try:
                out = client.infer(self.model, [inp]).as_numpy("OUTPUT__0")
                if out is None or not np.isfinite(out).all():
                    raise ValueError("no or non-finite output")
                self.ok += 1
            except Exception as exc:
                self.failed.append(f"{type(exc).__name__}: {exc}"[:200])
                client = httpclient.InferenceServerClient(self.url, network_timeout=60)
            self.latencies.append((time.time(), time.perf_counter() - start))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)
