"""A client that sends unpinned requests to Triton in a loop, counting answers and failures.

Used by the zero-downtime test and by ``modelci bench deploy``: what a user of the model sees
while versions are switched under it. It speaks Triton's HTTP/REST protocol with httpx (see
``triton_ops`` for why not gevent-based ``tritonclient`` inside a multi-threaded process).
"""

from __future__ import annotations

import queue
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


class OpenLoopClient(threading.Thread):
    """Unpinned requests at fixed scheduled times, whether or not earlier ones have answered.

    A closed-loop client (`LoadClient`) waits for each answer before it sends the next, so a
    stall delays the requests it would have sent and their latency is never measured
    (coordinated omission). Here request ``i`` is due at ``start + i / rate``; a pool of
    senders takes them in order, and latency runs from the due time, so time spent waiting for
    a free sender during a stall counts. An answer later than ``deadline_s`` after its due time,
    or none, is a failure, as it is for a caller with that deadline.
    """

    def __init__(self, url: str, model: str, dim: int, rate: float, deadline_s: float = 1.0, senders: int = 32) -> None:
        super().__init__(name="open-loop-client", daemon=True)
        if rate <= 0:
            raise ValueError("an open-loop client needs a rate > 0")
        self.url = url if url.startswith("http") else f"http://{url}"
        self.model, self.dim, self.rate, self.deadline_s = model, dim, rate, deadline_s
        self.senders = senders
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.ok = 0
        self.failed: list[str] = []
        self.latencies: list[tuple[float, float]] = []  # (wall time of the due time, seconds from it)

    def _record(self, due_wall: float, seconds: float, error: str | None) -> None:
        with self._lock:
            self.latencies.append((due_wall, seconds))
            if error is None and seconds > self.deadline_s:
                error = f"deadline: answered {seconds * 1000:.0f} ms after its due time"
            if error is None:
                self.ok += 1
            else:
                self.failed.append(error[:200])

    def _sender(self, due: queue.Queue, body: dict, path: str) -> None:
        with httpx.Client(base_url=self.url) as client:
            while (item := due.get()) is not None:
                due_perf, due_wall = item
                left = self.deadline_s - (time.perf_counter() - due_perf)
                error = None
                if left <= 0:
                    error = "deadline: no sender free before the deadline"
                else:
                    try:
                        response = client.post(path, json=body, timeout=left)
                        if response.status_code != 200:
                            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:150]}")
                        data = response.json()["outputs"][0]["data"]
                        if not data or not np.isfinite(data).all():
                            raise ValueError("no or non-finite output")
                    except httpx.TimeoutException:
                        error = f"deadline: no answer within {self.deadline_s:.1f} s of its due time"
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                self._record(due_wall, time.perf_counter() - due_perf, error)

    def run(self) -> None:
        x = np.random.default_rng(0).normal(size=(1, self.dim)).astype(np.float32)
        body = {"inputs": [{"name": "INPUT__0", "shape": [1, self.dim], "datatype": "FP32", "data": x.ravel().tolist()}]}
        path = f"/v2/models/{self.model}/infer"
        due: queue.Queue = queue.Queue()
        senders = [threading.Thread(target=self._sender, args=(due, body, path), daemon=True) for _ in range(self.senders)]
        for s in senders:
            s.start()
        start_perf, start_wall = time.perf_counter(), time.time()
        i = 0
        while not self.stop_event.is_set():
            at = i / self.rate
            pause = start_perf + at - time.perf_counter()
            if pause > 0:
                self.stop_event.wait(pause)  # the schedule itself, not synchronisation
                continue
            due.put((start_perf + at, start_wall + at))
            i += 1
        for _ in senders:
            due.put(None)
        for s in senders:
            s.join(self.deadline_s + 5)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.deployer.loadgen URL MODEL DIM RATE DEADLINE_S OUT``: an
    `OpenLoopClient` in a process of its own (so its threads do not share a GIL with what it
    measures) until SIGTERM; ``OUT.progress`` holds the answers so far, ``OUT`` the final figures."""
    import json
    import os
    import signal
    import sys

    url, model, dim, rate, deadline, out = (argv if argv is not None else sys.argv[1:])[:6]
    client = OpenLoopClient(url, model, int(dim), float(rate), float(deadline))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client.start()
    while not done.wait(0.2):
        with open(out + ".progress.tmp", "w") as fh:
            json.dump({"ok": client.ok, "failed": len(client.failed)}, fh)
        os.replace(out + ".progress.tmp", out + ".progress")
    client.stop()
    with open(out, "w") as fh:
        json.dump({"ok": client.ok, "failed": client.failed, "latencies": client.latencies}, fh)


if __name__ == "__main__":
    main()
