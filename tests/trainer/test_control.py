"""Interference control, the lock and the pure helpers of the trainer."""

from __future__ import annotations

import io
import threading
import time

import httpx
import numpy as np
import pytest
import torch

from infra.local.process import wait_until
from services.trainer.control import Admission, TritonLoad, parse_triton_metrics
from services.trainer.errors import Interrupted
from services.trainer.lock import LockTimeout, ModelLock
from services.trainer.sample_set import SampleSet
from services.trainer.settings import InterferenceSettings
from services.trainer.weights import fit, hidden_width

METRICS = """# HELP nv_inference_pending_request_count Instantaneous number of pending requests
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="a",version="1"} 2
nv_inference_pending_request_count{model="b",version="3"} 1
nv_inference_request_success{model="a",version="1"} 100
nv_inference_request_success{model="b",version="3"} 50
nv_inference_queue_duration_us{model="a",version="1"} 3000
"""


def test_triton_metrics_are_summed_over_models():
    totals = parse_triton_metrics(METRICS)
    assert totals["nv_inference_pending_request_count"] == 3
    assert totals["nv_inference_request_success"] == 150


def test_load_is_busy_on_pending_queue_time_or_request_rate():
    load = TritonLoad("unused", max_pending=0, max_queue_us=500, max_request_rate=-1)
    assert load.observe({"nv_inference_pending_request_count": 1}, now=0.0)  # a request waits
    assert not load.observe({"nv_inference_request_success": 100, "nv_inference_queue_duration_us": 10_000}, now=1.0)
    # 100 more requests that queued 1 ms each on average
    assert load.observe({"nv_inference_request_success": 200, "nv_inference_queue_duration_us": 110_000}, now=2.0)
    assert load.queue_us == pytest.approx(1000)
    rated = TritonLoad("unused", max_pending=10, max_queue_us=1e9, max_request_rate=20)
    rated.observe({"nv_inference_request_success": 0}, now=0.0)
    assert not rated.observe({"nv_inference_request_success": 10}, now=1.0)  # 10 req/s
    assert rated.observe({"nv_inference_request_success": 60}, now=2.0)  # 50 req/s
    assert rated.request_rate == pytest.approx(50)


def test_load_reads_the_real_triton_metrics(triton_settings):
    load = TritonLoad(triton_settings.metrics_url, max_pending=0, max_queue_us=500)
    with httpx.Client() as client:
        load.poll_once(client)
    assert load.reachable and not load.busy
    gone = TritonLoad("http://127.0.0.1:9/metrics", 0, 500)
    with httpx.Client() as client:
        gone.poll_once(client)
    assert not gone.reachable and not gone.busy  # no figures never blocks training


class _Load:
    """Stands in for TritonLoad's flag (the decision logic is tested above)."""

    interval_s = 0.02

    def __init__(self, busy: bool) -> None:
        self.busy = busy


def test_admission_pauses_training_steps_while_serving_is_busy():
    load = _Load(busy=True)
    admission = Admission(InterferenceSettings(), load)
    model = torch.nn.Linear(4, 2)
    steps: list[float] = []
    timer = threading.Timer(0.3, lambda: setattr(load, "busy", False))
    timer.start()
    with admission.attached(model):
        start = time.monotonic()
        model(torch.zeros(1, 4))  # blocks in the pre-hook until serving is quiet
        steps.append(time.monotonic() - start)
        model(torch.zeros(1, 4))
    assert steps[0] >= 0.25 and admission.pauses == 1 and admission.steps == 2
    assert admission.paused_s >= 0.2
    model(torch.zeros(1, 4))  # detached: no more checkpoints
    assert admission.steps == 2


def test_admission_is_bounded_and_stops_on_shutdown():
    capped = Admission(InterferenceSettings(max_pause_s=0.1), _Load(busy=True))
    capped.checkpoint()  # serving never quiets down: one step goes ahead after max_pause_s
    assert capped.pauses == 1
    off = Admission(InterferenceSettings(enabled=False), _Load(busy=True))
    off.checkpoint()
    assert off.pauses == 0
    stopping = Admission(InterferenceSettings(), _Load(busy=False), stop=lambda: True)
    with pytest.raises(Interrupted):
        stopping.checkpoint()


def test_model_lock_waits_renews_and_releases_only_its_own(redis_settings):
    client = redis_settings.client()
    key = f"{redis_settings.key_prefix}lock:test"
    first = ModelLock(client, key, ttl_ms=300)
    first.acquire(wait_s=1)
    t0, held = time.monotonic(), []

    def outlived_three_ttls() -> bool:
        held.append(first.held())
        return time.monotonic() - t0 > 0.9

    wait_until(outlived_three_ttls, 10, "three lock TTLs")
    assert all(held)  # renewed while held, never expired
    second = ModelLock(client, key, ttl_ms=300)
    with pytest.raises(LockTimeout):
        second.acquire(wait_s=0.3)
    assert not second.release()  # not its lock: nothing deleted
    assert first.held()
    threading.Timer(0.3, first.release).start()
    second.acquire(wait_s=10)
    assert second.waited_s > 0.1 and second.held()
    assert second.release() and client.get(key) is None
    client.close()


def test_holdout_split_is_by_content_so_duplicates_stay_on_one_side():
    ids = [f"s{i}" for i in range(200)]
    x, y = np.arange(200, dtype=np.float32).reshape(200, 1), np.arange(200) % 3
    train, hold = SampleSet(ids, x, y).split(0.2)
    assert 20 < len(hold) < 60 and len(train) + len(hold) == 200
    rev = SampleSet(ids[::-1], x[::-1], y[::-1])
    assert sorted(rev.split(0.2)[1].ids) == sorted(hold.ids)  # order does not matter
    # The same 50 inputs, each sent four times under different request ids.
    dup_x = np.tile(np.arange(50, dtype=np.float32).reshape(50, 1), (4, 1))
    train, hold = SampleSet([f"r{i}" for i in range(200)], dup_x, np.zeros(200, np.int64)).split(0.2)
    assert len(hold) and len(train)
    assert not set(train.x.ravel().tolist()) & set(hold.x.ravel().tolist()), "an input on both sides"


def test_base_weights_rebuilt_from_torchscript_only():
    from strategies.export import export_torchscript
    from strategies.models import make_mlp

    torch.manual_seed(1)
    net = make_mlp(8, 3, hidden=16)
    scripted = torch.jit.load(io.BytesIO(export_torchscript(net, (8,))))
    raw = dict(scripted.state_dict())
    rebuilt = make_mlp(8, 3, hidden=hidden_width(raw))
    fit(rebuilt, raw)
    x = torch.randn(5, 8)
    torch.testing.assert_close(torch.softmax(rebuilt(x), 1), scripted(x))


def test_only_the_training_thread_runs_at_low_priority():
    import os

    from services.trainer.control import run_low_priority

    def observe() -> tuple[int, int]:
        return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)

    before = observe()
    policy, nice = run_low_priority(observe, InterferenceSettings())
    assert policy == os.SCHED_IDLE and nice == 19
    assert observe() == before  # the caller (consumer loop, heartbeats) keeps its priority
    with pytest.raises(ZeroDivisionError):  # errors cross back to the caller
        run_low_priority(lambda: 1 / 0, InterferenceSettings())
