"""The training job of the benchmark: the trainer's own training path, control on or off.

Run as ``python -m benchmarks.trainer.job on|up|priority|off METRICS_URL SAMPLES OUT``. With
control ``on`` (the services' own defaults, what docker-compose ships) it applies the service's
process limits (torch threads, niceness, SCHED_IDLE) and attaches the same `Admission` hook to the
model that `core.Trainer` uses, fed by Triton's metrics; ``up`` is ``on`` with the settings
`modelci up` changes (`infra.local.embedded.EMBEDDED_DEFAULTS`); ``priority`` keeps the limits
but no admission rule; with control ``off`` it trains flat out on every core. It trains the replay strategy on
``SAMPLES`` digits (repeated with noise) update after update until SIGTERM. Its progress (steps,
paused seconds) is rewritten to ``OUT`` every 0.2 s, so the benchmark can also report what the
control costs in training throughput; the benchmark freezes and resumes it with SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from services.trainer.control import Admission, TritonLoad, apply_process_limits, run_low_priority
from services.trainer.errors import Interrupted
from services.trainer.settings import InterferenceSettings


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(d.target), n)
    x = (d.data[idx] / 16.0 + rng.normal(0, 0.05, (n, 64))).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(d.target[idx].astype(np.int64))


def main(mode: str, metrics_url: str, samples: int, out: str) -> None:
    from strategies.models import make_mlp
    from strategies.registry import get_strategy

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # on: every lever at the services' defaults; up: as modelci up ships them; priority: threads,
    # niceness and SCHED_IDLE but no admission rule; off: none.
    if mode == "up":
        from infra.local.embedded import EMBEDDED_DEFAULTS

        for key, value in EMBEDDED_DEFAULTS.get("trainer", {}).items():
            os.environ.setdefault(key, value)
    control = InterferenceSettings(enabled=mode != "off", watch_triton=mode in ("on", "up"), triton_metrics_url=metrics_url)
    limits = apply_process_limits(control)
    if not control.enabled:
        torch.set_num_threads(os.cpu_count() or 1)
    load = TritonLoad.from_settings(metrics_url, control).start() if control.enabled and control.watch_triton else None
    admission = Admission(control, load, stop=stop.is_set)
    x, y = _data(samples)
    strategy = get_strategy("replay")(make_mlp(64, 10), {"epochs": 1, "batch_size": 32, "lr": 0.01})
    progress = {"mode": mode, "limits": limits, "torch_threads": torch.get_num_threads(), "updates": 0, "ready": True,
                "control": control.model_dump(mode="json")}

    def report() -> None:
        while not stop.wait(0.2):
            progress.update(steps=admission.steps, paused_seconds=admission.paused_s, pauses=admission.pauses)
            tmp = Path(out + ".tmp")
            tmp.write_text(json.dumps(progress))
            os.replace(tmp, out)

    threading.Thread(target=report, daemon=True).start()

    def train() -> None:
        # What the training thread really runs at (read back from the kernel, not assumed).
        policy = {getattr(os, n): n for n in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE") if hasattr(os, n)}
        progress["limits"] = {**limits, "nice": os.getpriority(os.PRIO_PROCESS, 0), "scheduler": policy.get(os.sched_getscheduler(0))}
        while not stop.is_set():
            first = admission.steps
            with admission.attached(strategy.model):
                strategy.train(x, y)
            progress["updates"] += 1
            progress["steps_per_update"] = admission.steps - first  # the same work every update

    try:
        # The service's own path: the training thread is lowered, the Triton poller is not.
        run_low_priority(train, control) if control.enabled else train()
    except Interrupted:
        pass
    if load is not None:
        load.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
