"""Interference control: keep training from starving serving on a shared machine.

Three levers, all set by `InterferenceSettings`:

* scheduling: a bounded number of torch threads (process-wide), and for the thread that trains
  only, a higher niceness and on Linux ``SCHED_IDLE`` (the kernel then runs it only on cycles no
  normal thread wants);
* step level: a forward pre-hook on the model calls `Admission.checkpoint()` before every
  training step. It reads a flag kept fresh by a background thread that polls Triton's own
  metrics (pending requests, mean queue time per request since the last poll) and blocks while
  serving is busy, and optionally throttles to a duty cycle. The hook works for any strategy
  (Avalanche's loops included) because every step calls the model's ``forward``;
* on CUDA: training kernels go to a stream of the lowest priority.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import structlog
import torch

from services.trainer.errors import Interrupted
from services.trainer.settings import InterferenceSettings

_log = structlog.get_logger("modelci.trainer.control")
T = TypeVar("T")
_SAMPLE = re.compile(r"^(\w+)(?:\{[^}]*\})?\s+([0-9.eE+-]+|NaN|\+Inf)\s*$")


def apply_process_limits(control: InterferenceSettings) -> dict[str, object]:
    """Bounds torch's intra-op threads (process-wide); returns what was set, for the log."""
    if not control.enabled:
        return {}
    torch.set_num_threads(max(1, control.torch_threads))
    return {"torch_threads": torch.get_num_threads()}


def lower_thread_priority(control: InterferenceSettings) -> dict[str, object]:
    """Niceness and SCHED_IDLE for the calling thread only (Linux keeps both per thread).

    Only the thread that trains is lowered: the consumer's heartbeats, the lock renewal and the
    Triton poller keep normal priority, so a busy machine can starve training but never make the
    trainer lose its group membership, its lock, or its view of serving load.
    """
    applied: dict[str, object] = {}
    if not control.enabled:
        return applied
    if control.nice:
        try:
            applied["nice"] = os.nice(control.nice)
        except OSError as exc:
            applied["nice_error"] = str(exc)
    if control.idle_scheduler and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            applied["scheduler"] = "SCHED_IDLE"
        except OSError as exc:
            applied["scheduler_error"] = str(exc)
    return applied


def run_low_priority(fn: Callable[[], T], control: InterferenceSettings) -> T:
    """Runs ``fn`` in a fresh thread at lowered priority and returns its result (or raises its error)."""
    if not control.enabled:
        return fn()
    box: dict[str, object] = {}

    def work() -> None:
        box["limits"] = lower_thread_priority(control)
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="trainer-train", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def parse_triton_metrics(text: str) -> dict[str, float]:
    """Sums each metric over its label sets (all models, all versions)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            try:
                totals[m.group(1)] = totals.get(m.group(1), 0.0) + float(m.group(2))
            except ValueError:
                continue
    return totals


class TritonLoad:
    """Polls Triton's /metrics in a thread; ``busy`` says whether serving is loaded right now."""

    def __init__(
        self, url: str, max_pending: float, max_queue_us: float, interval_s: float = 0.25, max_request_rate: float = -1.0
    ) -> None:
        self.url = url
        self.max_pending = max_pending
        self.max_queue_us = max_queue_us
        self.max_request_rate = max_request_rate
        self.interval_s = interval_s
        self.busy = False
        self.pending = 0.0
        self.queue_us = 0.0
        self.request_rate = 0.0
        self.reachable = False
        self._last: tuple[float, float, float] | None = None  # (time, request count, queue µs) at the last poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, url: str, control: InterferenceSettings) -> "TritonLoad":
        return cls(url, control.max_pending_requests, control.max_queue_us, control.poll_interval_s, control.max_request_rate)

    def poll_once(self, client: httpx.Client) -> None:
        try:
            totals = parse_triton_metrics(client.get(self.url, timeout=1.0).text)
        except httpx.HTTPError:
            self.reachable = False
            self.busy = False  # no figures: do not block training forever on a missing Triton
            return
        self.observe(totals, time.monotonic())

    def observe(self, totals: dict[str, float], now: float) -> bool:
        """Updates the figures from one scrape (summed metrics) taken at ``now``; returns ``busy``."""
        self.reachable = True
        self.pending = totals.get("nv_inference_pending_request_count", 0.0)
        count = totals.get("nv_inference_request_success", 0.0) + totals.get("nv_inference_request_failure", 0.0)
        queue = totals.get("nv_inference_queue_duration_us", 0.0)
        if self._last is not None and count > self._last[1]:
            self.queue_us = (queue - self._last[2]) / (count - self._last[1])
            self.request_rate = (count - self._last[1]) / max(now - self._last[0], 1e-3)
        else:
            self.queue_us = 0.0
            self.request_rate = 0.0
        self._last = (now, count, queue)
        self.busy = (
            self.pending > self.max_pending
            or self.queue_us > self.max_queue_us
            or 0 <= self.max_request_rate < self.request_rate
        )
        return self.busy

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                self.poll_once(client)
                self._stop.wait(self.interval_s)

    def start(self) -> "TritonLoad":
        self._thread = threading.Thread(target=self._run, name="triton-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Admission:
    """Decides, before each training step, whether to go on, wait, or throttle."""

    def __init__(
        self,
        control: InterferenceSettings,
        load: TritonLoad | None = None,
        on_pause: Callable[[float], object] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.control = control
        self.stop = stop
        self.load = load
        self.on_pause = on_pause
        self.steps = 0
        self.paused_s = 0.0
        self.pauses = 0
        self._busy_since: float | None = None
        self._last_step_end: float | None = None

    def checkpoint(self) -> None:
        if self.stop():
            raise Interrupted("shutdown requested during training")
        self.steps += 1
        if not self.control.enabled:
            return
        if self.steps % max(1, self.control.check_every_steps):
            return
        now = time.monotonic()
        if self.control.duty_cycle < 1.0 and self._last_step_end is not None:
            # Throttle: after working for w seconds, rest w * (1 - d) / d.
            worked = now - self._last_step_end
            time.sleep(min(1.0, worked * (1 - self.control.duty_cycle) / max(self.control.duty_cycle, 0.01)))
        if self.load is not None and self.load.busy:
            start = time.monotonic()
            self.pauses += 1
            waited = 0.0
            while self.load.busy and time.monotonic() - start < self.control.max_pause_s and not self.stop():
                t0 = time.monotonic()
                time.sleep(self.load.interval_s / 2)
                waited += min(time.monotonic() - t0, 1.0)  # a process frozen by SIGSTOP counts at most 1 s
            self.paused_s += waited
            if self.on_pause is not None:
                self.on_pause(waited)
        self._last_step_end = time.monotonic()

    @contextlib.contextmanager
    def attached(self, model: torch.nn.Module) -> Iterator[None]:
        """Calls `checkpoint` before every forward pass of ``model`` while inside the block."""
        handle = model.register_forward_pre_hook(lambda _module, _args: self.checkpoint())
        try:
            yield
        finally:
            handle.remove()


_said_default_priority = False


@contextlib.contextmanager
def low_priority_stream(device: torch.device, enabled: bool) -> Iterator[None]:
    """Runs the block's CUDA work on the lowest-priority stream (no-op on the CPU).

    Measured on an H200 (docs/gpu.md): the lowest priority CUDA offers is 0, the default
    stream's own, so this ranks training below nothing there; and stream priorities only order
    work within one process, not against Triton's. Said once in the log, so nobody counts on it.
    """
    global _said_default_priority
    if not enabled or device.type != "cuda":
        yield
        return
    least, _greatest = torch.cuda.Stream.priority_range()
    if least == 0 and not _said_default_priority:
        _said_default_priority = True
        _log.warning("cuda_low_priority_stream_is_default", device=str(device), detail="the lowest stream priority equals the default stream's: training is not ranked below other work on this GPU")
    stream = torch.cuda.Stream(device=device, priority=least)
    with torch.cuda.stream(stream):
        yield
    stream.synchronize()


def controlled_fit(control: InterferenceSettings, admission: Admission, device: torch.device):
    """The runner the trainer hands `training.train_candidate`: the strategy's fit on a lowered
    thread (`run_low_priority`), pausing while serving needs the machine (`Admission`), on the
    lowest-priority CUDA stream; the GPU check passes the same one."""

    def run(strategy, fit_strategy):
        def attached() -> dict[str, float]:
            with admission.attached(strategy.model), low_priority_stream(device, control.low_priority_cuda_stream and control.enabled):
                return fit_strategy()

        return run_low_priority(attached, control)

    return run
