"""A steady request load against Triton: fixed rate, batch 1, one latency per request.

Run as ``python -m benchmarks.trainer.load URL MODEL RATE SECONDS OUT``. Requests are due on
a fixed schedule (open loop); a request that falls due while an earlier one is still out is sent
as soon as that one answers (never skipped), and its latency runs from its due time, so a slow
answer's delay to the requests queued behind it is counted (no coordinated omission). Writes
``{"latencies_ms": [...] (from the due time), "service_ms": [...] (from the send), "late": n, "errors": n}``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import tritonclient.http as httpclient


def main(url: str, model: str, rate: float, seconds: float, out: str, warmup_s: float = 1.0) -> None:
    client = httpclient.InferenceServerClient(url, connection_timeout=10, network_timeout=10)
    x = np.random.default_rng(0).random((1, 64), dtype=np.float32)
    inp = httpclient.InferInput("INPUT__0", [1, 64], "FP32")
    inp.set_data_from_numpy(x)
    latencies: list[float] = []
    service: list[float] = []
    errors = late = 0
    period = 1.0 / rate
    start = time.perf_counter()
    nxt = start
    while True:
        now = time.perf_counter()
        if now - start > warmup_s + seconds:
            break
        if nxt > now:
            time.sleep(nxt - now)
        elif now - nxt > period:
            late += 1
        sent = time.perf_counter()
        try:
            client.infer(model, [inp])
        except Exception:  # counted, not fatal: the figure is the latency distribution
            errors += 1
        done = time.perf_counter()
        if nxt - start >= warmup_s:
            latencies.append((done - nxt) * 1000.0)
            service.append((done - sent) * 1000.0)
        nxt += period
    client.close()
    with open(out, "w") as fh:
        json.dump({"latencies_ms": latencies, "service_ms": service, "late": late, "errors": errors}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
