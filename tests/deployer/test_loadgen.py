"""The open-loop client on real Triton: a stall of the server shows in the latency of every
request that fell due during it, and answers later than the deadline count as failures."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from infra.local.process import wait_until
from benchmarks.deployer.loadgen import OpenLoopClient
from tests.deployer import models

STALL_S = 1.4
RATE = 40.0


def test_a_server_stall_shows_as_queueing_in_p99_and_as_deadline_misses(env, trained, triton_server):
    env.register(trained["v1"], policy={"check_latency": False})
    client = OpenLoopClient(env.settings.triton.http_url, env.name, models.DIM, rate=RATE, deadline_s=1.0)
    client.start()
    pid = triton_server.pid()
    assert pid is not None
    try:
        wait_until(lambda: client.ok >= 20, 60, "client warmed up")
        stalled_at = time.time()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(STALL_S)  # the injected fault's length, not a wait for something to happen
        finally:
            os.kill(pid, signal.SIGCONT)
        seen = client.ok
        wait_until(lambda: client.ok >= seen + 40, 60, "answers after the stall")
    finally:
        client.stop()

    during = [s for t, s in client.latencies if stalled_at <= t <= stalled_at + STALL_S]
    before = [s for t, s in client.latencies if t < stalled_at]
    # Every request due during the stall waited for its end: a closed-loop client would have
    # sent (and timed) only the one request in flight when the server stopped.
    assert len(during) >= 0.7 * RATE * STALL_S
    assert float(np.median(during)) > 0.25 and max(during) > 0.9 * (STALL_S - 0.3)
    assert float(np.percentile([s for _, s in client.latencies], 99)) > 10 * float(np.percentile(before, 50))
    deadline = [f for f in client.failed if f.startswith("deadline")]
    assert deadline, "requests due more than the deadline before the stall's end were answered in time"
    assert len(client.failed) == len(deadline), client.failed[:5]
