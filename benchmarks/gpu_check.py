#!/usr/bin/env python3
"""One short GPU check of the trainer's CUDA path and of training/serving interference on a GPU.

    python3 benchmarks/gpu_check.py --out DIR            # CUDA when available (the GPU machine)
    python3 benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpucheck   # proof run on a CPU

Writes ``DIR/gpu-check.json`` after every part (so a run cut short still leaves what it measured)
and prints it at the end, followed by one ``SUMMARY`` line. Every part is guarded: a failure is
recorded as that part's ``error`` (with its traceback) and the next part still runs.

Parts:

1. ``strategies``: the ``modelci bench strategies`` machinery (`strategies.bench.run_strategy`,
   the same seeded MLP, stream and figures) for replay (default), naive and ewc, on ``cuda`` and
   on ``cpu`` in the same run (strategy by strategy, so the pairs share the machine's state).
   Reports each run's accuracy figures, wall seconds per update (one ``train`` call = one
   experience), the speed-up ``cpu_seconds / cuda_seconds`` (>1: CUDA faster) and how far the
   accuracies of the two devices are apart. Each strategy is probed for where its parameters and
   Avalanche's last mini-batch really were.
2. ``trainer_path``: the trainer service's own transport-free core,
   `services.trainer.training.train_candidate` (rebuild the registered architecture from the
   previous update's weights, restore the strategy's state, fit, evaluate, export), once per
   experience, with the fit wrapped as the service wraps it: `control.run_low_priority` (a
   lowered thread) inside `Admission.attached` and `control.low_priority_stream`; the stream
   priority and parameter device seen inside that block; then the exported module loaded on the
   device and compared with the trained model.
3. ``interference``: the served model as Triton's libtorch backend / the local Python backend
   (``infra/triton/backend/model.py``) runs it: the TorchScript export loaded with
   ``torch.jit.load``, ``inference_mode``, host input copied to the device and the output copied
   back, at batch 1 and 64 (the inference service's largest micro-batch), requests at a fixed rate.
   Latency p50/p99 (``service`` = start to answer; ``sched`` = from the scheduled arrival, so
   queueing counts) while: ``idle``; ``off`` = a trainer process trains replay flat out on the same
   device (control disabled); ``on`` = a trainer process with every lever at its defaults (one torch
   thread, nice 19 and SCHED_IDLE on the training thread, lowest-priority CUDA stream, the
   admission hook fed by a Triton-style ``/metrics`` endpoint this script serves from its request
   counters); ``on_priority`` = the same with ``max_request_rate=-1`` (what ``modelci up`` sets on
   one machine: the pending/queue rules still pause training, the request-rate rule does not);
   ``thread_off`` / ``thread_on`` = the training loop in a thread of the serving process (``on``
   settings as ``on_priority``). CUDA stream priorities only order kernels inside one process (one
   CUDA context); separate processes are time-sliced by the driver (no MPS here), so only the
   thread phases can show what the low-priority stream does. The thread phases also share the GIL
   with the serving loop. ``thread_on_hp_serving`` (CUDA only) is ``thread_on`` with serving on the
   highest-priority stream: CUDA's lowest priority is also the default streams' (0), so the
   trainer's stream is only "low" next to a stream created with a higher one. ``idle_end`` repeats
   ``idle`` last; the ratios' idle reference is the lower of the two (GPU clocks may differ). Done for the demo's served MLP (64 -> 64 -> 64 -> 10) and for a wide
   variant (hidden ``--wide``, 8192 on CUDA) in case the small one is too tiny to load an H200.
   p99 ratios to idle per batch size. The six trainer processes start together before the first
   phase (at most ``--worker-start-s`` seconds, polled; one that fails is started once more, alone);
   each one's stdout/stderr go to ``OUT/trainer-MODE-hHIDDEN.log`` and, for one that is not ready,
   its error, exit code and log tail go to ``interference.trainer_processes``.
4. ``families``: one update of each `benchmarks.families` family's model (its architecture and
   registered hyperparameters), on the device and on the CPU, through ``train_candidate`` with the
   trainer's wrapping, and its export served at batch 1 (`benchmarks.gpu_families`).

Packages this imports that the GPU machine (Python 3.12, torch 2.11, numpy, scipy, scikit-learn,
pandas, narwhals, matplotlib, psutil, httpx, tensorboard, torchvision, torchmetrics there) lacks,
carried as wheels in ``.whl`` (``benchmarks/gpu_wheels.sh`` downloads them, 7.5 MiB):
avalanche-lib==0.6.0 dill==0.4.1 gdown==6.5.1 beautifulsoup4==4.15.0 soupsieve==4.1.3
pytorchcv==0.0.74 qpsolvers==4.13.0 GPUtil==1.4.0 (built from its sdist) river==0.26.1
pydantic==2.14.3 pydantic-core==2.50.4 pydantic-settings==2.16.3 annotated-types==0.8.0
typing-inspection==0.4.5 typing-extensions==4.16.0 python-dotenv==1.2.4 structlog==26.1.0; each
downloaded with

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d .whl NAME==VERSION

wandb is not carried: Avalanche imports it at module level only for a W&B helper, so an empty
stub module stands in when it is missing (recorded as ``env.stubbed_modules``; GPUtil likewise,
should its ``distutils`` import fail on Python 3.12 despite setuptools' shim).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import math
import os
import platform
import sys
import threading
import time
import traceback
import types
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

STUBBED: list[str] = []


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves an empty module for each name in ``names`` through the import system, so that the
    stand-in has a real ``__spec__`` (``importlib.util.find_spec`` raises ``ValueError`` for a
    module in ``sys.modules`` whose ``__spec__`` is None: accelerate's ``is_wandb_available`` does
    that, imported on the GPU machine through avalanche -> torchmetrics -> transformers). No
    distribution metadata goes with it, so ``importlib.metadata`` checks (accelerate's) still see
    the package as absent."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(self, name, path=None, target=None):
        if name in self.names:
            return importlib.machinery.ModuleSpec(name, self, origin="stub (benchmarks/gpu_check.py)")
        return None

    def create_module(self, spec):
        return None  # the default: an empty module

    def exec_module(self, module) -> None:
        module.__dict__.setdefault("__stub__", True)


_STUB_FINDER = _StubFinder()


def _stub_optional_imports() -> None:
    """Avalanche 0.6.0 imports wandb (W&B confusion matrices) and GPUtil (GPU-usage metric) at
    module level; neither is used here. GPUtil does ``from distutils import spawn``, which Python
    3.12 lacks: importing setuptools first installs its ``distutils`` shim. Whatever still fails
    to import is served as an empty module by `_StubFinder` (first on ``sys.meta_path``, for
    those names only)."""
    try:
        import distutils  # noqa: F401
    except ImportError:
        with contextlib.suppress(Exception):
            import setuptools  # noqa: F401  (its _distutils_hack provides `distutils`)
    for name in ("wandb", "GPUtil"):
        try:
            importlib.import_module(name)
        except Exception:
            for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[mod]  # a half-imported real package must not shadow the stand-in
            _STUB_FINDER.names.add(name)
            if _STUB_FINDER not in sys.meta_path:
                sys.meta_path.insert(0, _STUB_FINDER)
            importlib.import_module(name)
            STUBBED.append(name)


_stub_optional_imports()  # also runs in the spawned trainer processes (they import this module)

import numpy as np  # noqa: E402
import torch  # noqa: E402

STRATEGIES = ["replay", "naive", "ewc"]
PHASES = ["idle", "off", "on", "on_priority", "thread_off", "thread_on", "thread_on_hp_serving", "idle_end"]
BATCH_SIZES = [1, 64]


# ---------------------------------------------------------------------------------------------
# helpers
def _r(x: Any, nd: int = 4) -> Any:
    if isinstance(x, float):
        return round(x, nd) if math.isfinite(x) else None
    if isinstance(x, list):
        return [_r(v, nd) for v in x]
    if isinstance(x, dict):
        return {k: _r(v, nd) for k, v in x.items()}
    return x


def _error(exc: BaseException) -> dict[str, Any]:
    return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Report:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.doc: dict[str, Any] = {}
        out.mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        tmp = self.out / "gpu-check.json.tmp"
        tmp.write_text(json.dumps(_r(self.doc), indent=1, default=str))
        os.replace(tmp, self.out / "gpu-check.json")


def _env(device: torch.device) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for dist in ("avalanche-lib", "river", "pydantic", "pydantic-settings", "structlog", "scikit-learn", "numpy", "torchvision"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "stubbed_modules": STUBBED,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=torch.cuda.get_device_name(device),
            gpu_memory_gib=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count,
            stream_priority_range=list(torch.cuda.Stream.priority_range()),
        )
    return env


# ---------------------------------------------------------------------------------------------
# part 1: the strategies benchmark on cuda and cpu
@contextlib.contextmanager
def _probe_devices(record: dict[str, Any]):
    """Make `strategies.bench.run_strategy` build probing subclasses that note where the model's
    parameters and the mini-batches Avalanche feeds it were during each update (run_strategy itself is
    used unchanged)."""
    from strategies import bench

    original = bench.get_strategy

    def probed(name: str):
        cls = original(name)

        def train(self, x, y):
            def seen(_module, inputs):  # the mini-batch Avalanche feeds the model
                if inputs and isinstance(inputs[0], torch.Tensor):
                    record["minibatch_device"] = str(inputs[0].device)

            handle = self.model.register_forward_pre_hook(seen)
            try:
                out = cls.train(self, x, y)
            finally:
                handle.remove()
            record["param_device"] = str(next(self.model.parameters()).device)
            return out

        return type(cls.__name__, (cls,), {"train": train, "__module__": cls.__module__})

    bench.get_strategy = probed
    try:
        yield
    finally:
        bench.get_strategy = original


def _cuda_warm_up(device: torch.device) -> None:
    from strategies.models import make_mlp
    from strategies.registry import get_strategy

    torch.manual_seed(0)
    s = get_strategy("naive")(make_mlp(64, 10, 128), {"epochs": 1, "batch_size": 32}, device=str(device))
    s.train(torch.rand(256, 64), torch.randint(0, 10, (256,)))
    _sync(device)


def part_strategies(args, device: torch.device, rep: Report, deadline: float) -> dict[str, Any]:
    from strategies import bench
    from strategies.streams import get_stream

    devices = [device, torch.device("cpu")] if device.type == "cuda" else [torch.device("cpu")]
    torch.set_num_threads(args.threads)  # the bench's default (--threads 1) and the trainer's control
    overrides: dict[str, Any] = {"epochs": args.epochs} if args.epochs else {}
    stream = get_stream(args.stream, args.seed, size=args.train_per_experience)
    res: dict[str, Any] = {
        "stream": stream.name,
        "concepts": stream.concepts,
        "order": [stream.concepts[stream.concept_index(t)] for t in range(len(stream.experiences))],
        "train_per_experience": [len(e.y_train) for e in stream.experiences],
        "hidden": args.hidden,
        "torch_threads": torch.get_num_threads(),
        "hyperparameter_overrides": overrides,
        "devices": [str(d) for d in devices],
        "runs": {},
        "comparison": {},
    }
    rep.doc["strategies"] = res
    started = time.perf_counter()
    bench.warm_up()
    if device.type == "cuda":
        _cuda_warm_up(device)
    res["warm_up_seconds"] = time.perf_counter() - started
    for name in STRATEGIES:
        for dev in devices:
            key = f"{name}@{dev.type}"
            if time.monotonic() > deadline:
                res["runs"][key] = {"skipped": "time budget of this part spent"}
                continue
            probe: dict[str, Any] = {}
            try:
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                t0 = time.perf_counter()
                with _probe_devices(probe):
                    r = bench.run_strategy(stream, name, args.seed, overrides, args.hidden, device=str(dev))
                run = {
                    "average_accuracy": r["average_accuracy"],
                    "forgetting": r["forgetting"],
                    "first_concept_forgetting": r["first_concept_forgetting"],
                    "bwt": r["bwt"],
                    "accuracy_matrix": r["accuracy_matrix"],
                    "update_seconds": r["update_seconds"],
                    "update_seconds_each": r["update_seconds_each"],
                    "update_cpu_seconds": r["update_cpu_seconds"],
                    "total_seconds": time.perf_counter() - t0,
                    **probe,
                }
                if dev.type == "cuda":
                    run["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
                res["runs"][key] = run
            except Exception as exc:
                res["runs"][key] = _error(exc)
            rep.save()
        g, c = res["runs"].get(f"{name}@cuda", {}), res["runs"].get(f"{name}@cpu", {})
        if "update_seconds" in g and "update_seconds" in c:
            mg, mc = np.asarray(g["accuracy_matrix"]), np.asarray(c["accuracy_matrix"])
            res["comparison"][name] = {
                "speedup_cpu_over_cuda_seconds": c["update_seconds"] / g["update_seconds"],
                "cuda_update_seconds": g["update_seconds"],
                "cpu_update_seconds": c["update_seconds"],
                "average_accuracy_cuda": g["average_accuracy"],
                "average_accuracy_cpu": c["average_accuracy"],
                "average_accuracy_diff": abs(g["average_accuracy"] - c["average_accuracy"]),
                "max_abs_accuracy_matrix_diff": float(np.abs(mg - mc).max()),
                "close": bool(abs(g["average_accuracy"] - c["average_accuracy"]) <= 0.03),
                "on_cuda": g.get("param_device", "").startswith("cuda") and str(g.get("minibatch_device")).startswith("cuda"),
            }
    res["seconds"] = time.perf_counter() - started
    return res


# ---------------------------------------------------------------------------------------------
# part 2: the trainer's update path around the strategy (as core.Trainer._update runs it)
def trainer_runner(device: torch.device):
    """The fit runner the trainer service passes to `train_candidate` (`control.controlled_fit`),
    every lever of its interference control at its default and no serving load to watch; the
    device is synchronised inside it, so the fit's time includes the queued kernels."""
    from services.trainer.control import Admission, controlled_fit
    from services.trainer.settings import InterferenceSettings

    control = InterferenceSettings(watch_triton=False)
    runner = controlled_fit(control, Admission(control, None), device)

    def synced(strategy, fit_strategy):
        def fit_and_sync() -> dict[str, float]:
            out = fit_strategy()
            _sync(device)
            return out

        return runner(strategy, fit_and_sync)

    return synced


def part_trainer_path(args, device: torch.device, rep: Report) -> tuple[dict[str, Any], bytes | None]:
    from services.common.tensors import InputSpec
    from services.trainer.control import Admission, low_priority_stream, run_low_priority
    from services.trainer.evaluation import accuracy
    from services.trainer.sample_set import SampleSet
    from services.trainer.settings import InterferenceSettings, TrainerSettings
    from services.trainer.training import TrainingJob, train_candidate
    from services.trainer.weights import load_state
    from strategies.architecture import Architecture
    from strategies.registry import get_strategy
    from strategies.streams import get_stream

    res: dict[str, Any] = {}
    rep.doc["trainer_path"] = res
    stream = get_stream(args.stream, args.seed, size=args.train_per_experience)
    control = InterferenceSettings(watch_triton=False)  # every other lever at its default
    defaults = TrainerSettings.model_construct()  # the trainer's own holdout fraction and seed
    torch.manual_seed(args.seed)
    # The demo's served MLP (TrainerSettings.hidden = 64), rebuilt from its factory as the trainer does.
    arch = Architecture("strategies.models:make_mlp", {"input_dim": 64, "num_classes": stream.num_classes, "hidden": 64})
    spec = InputSpec((64,))
    hp = {"epochs": args.epochs} if args.epochs else {}
    admission = Admission(control, None)
    seen: dict[str, Any] = {}
    per_update = []
    weights: dict[str, torch.Tensor] | None = None
    state: dict[str, Any] | None = None
    result = None

    def controlled(strategy, fit_strategy):
        """What the trainer service wraps around the fit (services.trainer.core), probed."""

        def attached() -> dict[str, float]:
            with admission.attached(strategy.model), low_priority_stream(device, control.low_priority_cuda_stream and control.enabled):
                if device.type == "cuda":
                    cur = torch.cuda.current_stream(device)
                    seen["stream_priority_inside"] = cur.priority
                    seen["stream_is_default"] = cur == torch.cuda.default_stream(device)
                policy = {getattr(os, n): n for n in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE") if hasattr(os, n)}
                seen["thread_nice"] = os.getpriority(os.PRIO_PROCESS, 0)
                seen["thread_scheduler"] = policy.get(os.sched_getscheduler(0)) if hasattr(os, "sched_getscheduler") else None
                seen["param_device"] = str(next(strategy.model.parameters()).device)
                out = fit_strategy()
                _sync(device)
                return out

        return run_low_priority(attached, control)

    for t, exp in enumerate(stream.experiences):
        samples = SampleSet([f"{t}-{i}" for i in range(len(exp.y_train))], exp.x_train.numpy(), exp.y_train.numpy())
        job = TrainingJob(arch, spec, get_strategy("replay"), hp, samples, base_weights=weights, state=state,
                          holdout_fraction=defaults.holdout_fraction, seed=args.seed, device=device)
        # The very function the trainer service calls: rebuild, restore, fit, evaluate, export.
        result = train_candidate(job, controlled)
        weights, state = load_state(result.weights), result.state
        x_test, y_test = stream.test_set(stream.concept_index(t))
        per_update.append(
            {
                "concept": exp.concept,
                "fit_seconds": result.metrics["fit_seconds"],
                "export_seconds": result.metrics["export_seconds"],
                "state_restored": result.state_restored,
                "loss": result.metrics.get("loss"),
                "iterations": result.metrics.get("train_iterations"),
                "accuracy_on_its_concept": accuracy(result.model, x_test, y_test, torch.device("cpu")),
            }
        )
    res.update(seen)
    res["main_thread_nice"] = os.getpriority(os.PRIO_PROCESS, 0)
    res["admission_steps"] = admission.steps
    res["updates"] = per_update
    res["fit_seconds_mean"] = float(np.mean([u["fit_seconds"] for u in per_update]))
    res["memory_size"] = int(result.metrics["memory_size"]) if result is not None else 0
    if device.type == "cuda":
        least, greatest = torch.cuda.Stream.priority_range()
        res["stream_priority_range"] = [least, greatest]
        res["default_stream_priority"] = torch.cuda.default_stream(device).priority
        res["low_priority_stream_used"] = seen.get("stream_priority_inside") == least and not seen.get("stream_is_default")
        # CUDA's lowest priority is also the default one (0): a "low-priority" training stream
        # is then only below streams created with a higher (negative) priority, not below a
        # server that launches on its default stream.
        res["lowest_equals_default_priority"] = least == res["default_stream_priority"]
    # The candidate's export, loaded where it serves and compared with the trained module.
    artifact = result.artifact if result is not None else None
    if artifact is None:
        return res, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        served = torch.jit.load(io.BytesIO(artifact), map_location=device).eval()
    x = torch.rand(64, 64)
    with torch.inference_mode():
        probs = served(x.to(device))
        want = torch.softmax(result.model.to(device).eval()(x.to(device)), dim=1)
    res["export_bytes"] = len(artifact)
    res["served_output_device"] = str(probs.device)
    res["export_max_abs_diff"] = float((probs - want).abs().max())
    res["probabilities_sum_to_1"] = bool(torch.allclose(probs.sum(1), torch.ones(64, device=device), atol=1e-4))
    return res, artifact


# ---------------------------------------------------------------------------------------------
# part 3: serving latency with a trainer on the same device
class ServingCounters:
    """Triton-style figures of the serving loop, for the trainer's admission rule (`TritonLoad`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.success = 0
        self.queue_us = 0.0
        self.t0: float | None = None
        self.rate = 0.0
        self.started = 0

    def metrics_text(self) -> str:
        with self.lock:
            pending = 0
            if self.t0 is not None:
                due = int((time.perf_counter() - self.t0) * self.rate) + 1
                pending = max(0, due - self.started)
            return (
                f"nv_inference_request_success{{model=\"served\",version=\"1\"}} {self.success}\n"
                f"nv_inference_request_failure{{model=\"served\",version=\"1\"}} 0\n"
                f"nv_inference_queue_duration_us{{model=\"served\",version=\"1\"}} {self.queue_us:.1f}\n"
                f"nv_inference_pending_request_count{{model=\"served\",version=\"1\"}} {pending}\n"
            )


def _metrics_server(counters: ServingCounters) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = counters.metrics_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/metrics"


def _control_for(mode: str, url: str):
    from services.trainer.settings import InterferenceSettings

    if mode == "off":
        return InterferenceSettings(enabled=False)
    if mode == "on":
        return InterferenceSettings(enabled=True, watch_triton=True, triton_metrics_url=url)
    if mode == "on_priority":
        return InterferenceSettings(enabled=True, watch_triton=True, triton_metrics_url=url, max_request_rate=-1.0)
    raise ValueError(mode)


def training_loop(mode: str, hidden: int, device_name: str, url: str, samples: int, ready, go, stop, report, in_thread: bool) -> None:
    """The trainer's training path (as `services.trainer.bench.job`, on ``device``): replay on
    digits, one epoch per update, update after update until ``stop``; figures into ``report``."""
    out: dict[str, Any] = {"mode": mode, "hidden": hidden, "in_thread": in_thread}
    try:
        from services.trainer.bench.job import _data
        from services.trainer.control import Admission, TritonLoad, apply_process_limits, low_priority_stream, run_low_priority
        from services.trainer.errors import Interrupted
        from strategies.models import make_mlp
        from strategies.registry import get_strategy

        device = torch.device(device_name)
        control = _control_for(mode, url)
        if in_thread:
            limits: dict[str, Any] = {}  # the serving process's thread pool is not the trainer's to set
        else:
            limits = apply_process_limits(control)
            if not control.enabled:
                torch.set_num_threads(os.cpu_count() or 1)
        load = TritonLoad.from_settings(url, control).start() if control.enabled and control.watch_triton else None
        admission = Admission(control, load, stop=stop.is_set)
        x, y = _data(samples)
        torch.manual_seed(0)
        strategy = get_strategy("replay")(make_mlp(64, 10, hidden), {"epochs": 1, "batch_size": 32, "lr": 0.01}, device=device_name)
        strategy.train(x[:256], y[:256])  # warm-up: CUDA context, kernels, Avalanche set-up
        _sync(device)
        out.update(param_device=str(next(strategy.model.parameters()).device), process_limits=limits, torch_threads=torch.get_num_threads())
        ready.set()
        go.wait()
        updates = 0
        t0 = time.perf_counter()

        def train() -> None:
            nonlocal updates
            policy = {getattr(os, n): n for n in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE") if hasattr(os, n)}
            out["thread_nice"] = os.getpriority(os.PRIO_PROCESS, 0)
            out["thread_scheduler"] = policy.get(os.sched_getscheduler(0)) if hasattr(os, "sched_getscheduler") else None
            lowered = control.enabled and control.low_priority_cuda_stream
            while not stop.is_set():
                with admission.attached(strategy.model), low_priority_stream(device, lowered):
                    if device.type == "cuda":
                        out["stream_priority"] = torch.cuda.current_stream(device).priority
                    strategy.train(x, y)
                updates += 1

        try:
            run_low_priority(train, control) if control.enabled else train()
        except Interrupted:
            pass
        _sync(device)
        seconds = time.perf_counter() - t0
        if load is not None:
            load.stop()
        out.update(
            seconds=seconds,
            updates=updates,
            steps=admission.steps,
            steps_per_s=admission.steps / max(seconds, 1e-9),
            paused_seconds=admission.paused_s,
            pauses=admission.pauses,
        )
    except BaseException as exc:  # recorded, and the parent is not left waiting
        out.update(_error(exc))
        out["failed_before_ready"] = not ready.is_set()
    report(out)
    ready.set()  # after the report: a parent that sees `ready` can tell a failure from `failed`


def _process_worker(mode, hidden, device_name, url, samples, ready, go, stop, queue, failed) -> None:
    out: dict[str, Any] = {}

    def report(o: dict[str, Any]) -> None:
        if "error" in o:
            failed.set()  # before `ready` (set after the report)
        queue.put(o)

    try:
        training_loop(mode, hidden, device_name, url, samples, ready, go, stop, report, in_thread=False)
    except BaseException as exc:  # noqa: BLE001  (anything training_loop itself let through)
        out.update(_error(exc))
        report(out)
        ready.set()


class Served:
    """The exported model as the libtorch backend runs it: host in, device compute, host out."""

    def __init__(self, artifact: bytes, device: torch.device) -> None:
        self.device = device
        with warnings.catch_warnings():  # TorchScript is what Triton's libtorch backend loads
            warnings.simplefilter("ignore", FutureWarning)
            self.model = torch.jit.load(io.BytesIO(artifact), map_location=device).eval()
        self.stream: Any = None  # None: the default stream, as a libtorch backend instance uses

    def __call__(self, x: np.ndarray) -> np.ndarray:
        on = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with on, torch.inference_mode():
            out = self.model(torch.from_numpy(x).to(self.device)).float()
            return out.cpu().numpy()


def _serve(served: Served, counters: ServingCounters, n: int, rate: float, batch_size: int) -> dict[str, Any]:
    rng = np.random.default_rng(batch_size)
    inputs = [rng.random((batch_size, 64), dtype=np.float32) for _ in range(16)]
    for i in range(20):  # warm-up of this shape
        served(inputs[i % 16])
    service, sched = [], []
    gap = 1.0 / rate
    t0 = time.perf_counter()
    with counters.lock:
        counters.t0, counters.rate, counters.started = t0, rate, 0
    for i in range(n):
        due = t0 + i * gap
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        start = time.perf_counter()
        with counters.lock:
            counters.started += 1
        served(inputs[i % 16])
        end = time.perf_counter()
        with counters.lock:
            counters.success += 1
            counters.queue_us += max(0.0, start - due) * 1e6
        service.append((end - start) * 1e3)
        sched.append((end - due) * 1e3)
    wall = time.perf_counter() - t0
    with counters.lock:
        counters.t0 = None
    return {
        "requests": n,
        "service_p50_ms": _pct(service, 50),
        "service_p99_ms": _pct(service, 99),
        "service_max_ms": max(service),
        "sched_p50_ms": _pct(sched, 50),
        "sched_p99_ms": _pct(sched, 99),
        "achieved_rate": n / wall,
    }


class _GpuUtil:
    """Samples GPU utilisation (NVML through torch) during a phase, where available."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.samples, self.clocks, self._stop = device, [], [], threading.Event()

    def __enter__(self):
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
                self._t = threading.Thread(target=self._run, daemon=True)
                self._t.start()
            except Exception:
                self.device = torch.device("cpu")
        return self

    def _run(self):
        while not self._stop.wait(0.1):
            with contextlib.suppress(Exception):
                self.samples.append(torch.cuda.utilization(self.device))
                self.clocks.append(torch.cuda.clock_rate(self.device))

    def __exit__(self, *exc):
        self._stop.set()

    @property
    def mean(self):
        return float(np.mean(self.samples)) if self.samples else None

    @property
    def clock(self):
        return float(np.mean(self.clocks)) if self.clocks else None


def part_interference(args, device: torch.device, artifact: bytes | None, rep: Report, deadline: float) -> dict[str, Any]:
    import multiprocessing as mp

    from strategies.export import export_torchscript
    from strategies.models import make_mlp

    res: dict[str, Any] = {
        "batch_sizes": BATCH_SIZES,
        "requests_per_batch_size": args.requests,
        "rate_per_s": args.rate,
        "trainer": "replay, epochs 1, batch 32 (+64 from memory), lr 0.01, 3000 digits per update, update after update",
        "note": "process phases: separate CUDA contexts, time-sliced by the driver, so stream priority cannot act across them; "
        "thread phases: same context (stream priority can act) but the training thread shares the GIL with serving; "
        "thread_on (and thread_on_hp_serving) run the on_priority settings (trainer.mode says so); "
        "thread_on_hp_serving: as thread_on, with serving on the highest-priority stream (not what the project does); "
        "trainer_processes: how each trainer process started (its output is in OUT/trainer-MODE-hHIDDEN.log); "
        "a phase whose trainer failed or took no step is left out of ratios_to_idle (see ratios_left_out)",
        "models": {},
    }
    rep.doc["interference"] = res
    counters = ServingCounters()
    server, url = _metrics_server(counters)
    res["metrics_url"] = url
    widths = [("served", 64), (f"wide{args.wide}", args.wide)]
    proc_modes = ["off", "on", "on_priority"]
    ctx = mp.get_context("spawn")
    workers: dict[tuple[str, int], dict[str, Any]] = {}
    res["trainer_processes"] = status = {}
    try:
        # Start every trainer process now (imports, CUDA context, warm-up) so that none of that
        # falls inside a measured phase; each waits for its `go`. Each child's stdout/stderr go
        # to OUT/trainer-MODE-hHIDDEN.log (its tail lands in the JSON if it fails).
        t0 = time.perf_counter()
        for _label, hidden in widths:
            for mode in proc_modes:
                workers[(mode, hidden)] = _start_worker(ctx, mode, hidden, device, url, args, rep.out)
        start_deadline = time.monotonic() + min(args.worker_start_s, max(1.0, deadline - time.monotonic()))
        _await_workers(workers, start_deadline)
        # A worker that failed is started once more, alone (a start-up race, e.g. of several CUDA
        # contexts at once, would not repeat); one that is merely slow keeps its time.
        # If a second attempt fails as the first did, the failure is taken as deterministic and
        # the other failed workers are not retried.
        for key, w in list(workers.items()):
            if w["state"] == "failed" and time.monotonic() < start_deadline - 5:
                w["proc"].join(timeout=2)
                first = _worker_status(w)
                workers[key] = w2 = _start_worker(ctx, key[0], key[1], device, url, args, rep.out)
                w2["attempts"], w2["first_attempt"] = 2, first
                _await_workers({key: w2}, start_deadline)
                again = _worker_status(w2)
                if again["state"] == "failed" and (again.get("error"), again.get("exitcode")) == (first.get("error"), first.get("exitcode")):
                    break
        res["worker_start_seconds"] = time.perf_counter() - t0
        res["worker_start_budget_seconds"] = args.worker_start_s
        res["workers_ready"] = sum(w["state"] == "ready" for w in workers.values())
        for (mode, hidden), w in workers.items():
            status[f"{mode}@{hidden}"] = _worker_status(w)
        rep.save()

        for label, hidden in widths:
            m: dict[str, Any] = {"hidden": hidden, "phases": {}}
            res["models"][label] = m
            try:
                if hidden == 64 and artifact is not None:
                    art = artifact  # the model the trainer path just trained and exported
                else:
                    torch.manual_seed(1)
                    art = export_torchscript(make_mlp(64, 10, hidden).eval(), (64,))
                served = Served(art, device)
                m["served_device"] = str(next(served.model.parameters()).device)
                m["params"] = sum(p.numel() for p in served.model.parameters())
            except Exception as exc:
                m.update(_error(exc))
                continue
            for phase in PHASES:
                if time.monotonic() > deadline:
                    m["phases"][phase] = {"skipped": "time budget spent"}
                    continue
                try:
                    m["phases"][phase] = _phase(phase, hidden, served, counters, device, url, args, workers)
                except Exception as exc:
                    m["phases"][phase] = _error(exc)
                rep.save()
            _ratios(m)
            rep.save()
    finally:
        for (mode, hidden), w in workers.items():
            st = status.setdefault(f"{mode}@{hidden}", {})
            if st.get("state") is not None and _update_worker(w) != st["state"]:
                st["state_later"] = w["state"]  # e.g. a slow start that was ready by its phase
            w["stop"].set()
            w["go"].set()
        end = time.monotonic() + 5
        for (mode, hidden), w in workers.items():
            w["proc"].join(timeout=max(0.1, end - time.monotonic()))
            st = status[f"{mode}@{hidden}"]
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join(timeout=2)
                st["killed_at_end"] = True
            st["exitcode"] = w["proc"].exitcode  # final, for the record
        server.shutdown()
    return res


def _start_worker(ctx, mode: str, hidden: int, device: torch.device, url: str, args, out_dir: Path) -> dict[str, Any]:
    """Starts one trainer process with its stdout/stderr in a file (fds 1 and 2 pointed at it
    while the child is spawned: the child inherits them, so start-up crashes land there too)."""
    w: dict[str, Any] = {
        "ready": ctx.Event(), "go": ctx.Event(), "stop": ctx.Event(), "failed": ctx.Event(), "queue": ctx.Queue(),
        "log": out_dir / f"trainer-{mode}-h{hidden}.log", "attempts": 1, "state": "starting", "report": None,
    }
    w["proc"] = ctx.Process(
        target=_process_worker,
        args=(mode, hidden, str(device), url, args.train_samples, w["ready"], w["go"], w["stop"], w["queue"], w["failed"]),
        daemon=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(w["log"], "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            w["t0"] = time.monotonic()
            w["proc"].start()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return w


def _await_workers(workers: dict[Any, dict[str, Any]], deadline: float) -> None:
    """Polls until every worker is ready, failed or dead, or until ``deadline``."""
    pending = [w for w in workers.values() if w["state"] == "starting"]
    while pending:
        for w in list(pending):
            _update_worker(w)
            if w["state"] != "starting":
                pending.remove(w)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.1)


def _update_worker(w: dict[str, Any]) -> str:
    if w["state"] != "starting":
        return w["state"]
    alive = w["proc"].is_alive()
    if w["failed"].is_set() or (not alive and not w["ready"].is_set()):
        w["state"] = "failed"
    elif w["ready"].is_set():
        w["state"] = "ready" if alive else "failed"
    if w["state"] != "starting":
        w["start_seconds"] = time.monotonic() - w["t0"]
    if w["state"] == "failed" and w["report"] is None:
        with contextlib.suppress(Exception):  # a report is on its way only when `failed` is set
            w["report"] = w["queue"].get(timeout=5 if w["failed"].is_set() else 0.2)
    return w["state"]


def _log_tail(path: Path, n: int = 2500) -> str | None:
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        return data[-n:].decode("utf-8", "replace") if data else None
    return None


def _worker_status(w: dict[str, Any]) -> dict[str, Any]:
    _update_worker(w)
    st: dict[str, Any] = {"state": w["state"], "attempts": w["attempts"], "start_seconds": w.get("start_seconds"), "log": w["log"].name}
    if w["state"] == "starting":
        st["waited_seconds"] = time.monotonic() - w["t0"]
    if w["state"] != "ready":
        st["alive"] = w["proc"].is_alive()
        st["exitcode"] = w["proc"].exitcode
        if w["report"] is not None:
            st["error"] = w["report"].get("error")
            st["traceback"] = w["report"].get("traceback")
        st["log_tail"] = _log_tail(w["log"])
    if "first_attempt" in w:
        st["first_attempt"] = w["first_attempt"]
    return st


def _phase(phase: str, hidden: int, served: Served, counters: ServingCounters, device: torch.device, url: str, args, workers) -> dict[str, Any]:
    out: dict[str, Any] = {}
    trainer = None
    thread = None
    if phase in ("off", "on", "on_priority"):
        trainer = workers[(phase, hidden)]
        if _update_worker(trainer) != "ready" or not trainer["proc"].is_alive():
            st = _worker_status(trainer)
            why = st.get("error") or (
                f"not ready after {st.get('waited_seconds', 0):.1f} s" if st["state"] == "starting" else f"exited with code {st.get('exitcode')}"
            )
            return {"error": f"trainer process for {phase} (hidden {hidden}) {st['state']}: {why}", "trainer_process": st}
        trainer["go"].set()
    elif phase.startswith("thread_"):
        if phase == "thread_on_hp_serving":
            if device.type != "cuda":
                return {"skipped": "CUDA only"}
            # Not what the project does today: serving on the highest-priority stream, to show
            # what stream priorities can do against the trainer's lowest-priority stream.
            served.stream = torch.cuda.Stream(device=device, priority=torch.cuda.Stream.priority_range()[1])
            out["serving_stream_priority"] = served.stream.priority
        mode = "off" if phase == "thread_off" else "on_priority"
        ready, go, stop = threading.Event(), threading.Event(), threading.Event()
        box: list[dict[str, Any]] = []
        thread = threading.Thread(
            target=training_loop,
            args=(mode, hidden, str(device), url, args.train_samples, ready, go, stop, box.append, True),
            name="trainer-thread",
            daemon=True,
        )
        thread.start()
        ready.wait(timeout=120)
        go.set()
    if not phase.startswith("idle"):
        time.sleep(args.ramp)  # training under way before the first request
    starting = [f"{m}@{h}" for (m, h), w in workers.items() if _update_worker(w) == "starting"]
    if starting:  # trainer processes still importing / creating their CUDA context: load beside serving
        out["trainer_processes_still_starting"] = starting
    try:
        with _GpuUtil(device) as util:
            for bs in BATCH_SIZES:
                out[f"batch{bs}"] = _serve(served, counters, args.requests, args.rate, bs)
        out["gpu_utilization_mean"] = util.mean
        out["sm_clock_mhz_mean"] = util.clock
    finally:
        served.stream = None
        if trainer is not None:
            trainer["stop"].set()
            try:
                out["trainer"] = trainer["queue"].get(timeout=60)
            except Exception:
                out["trainer"] = {"error": "trainer process did not report", "exitcode": trainer["proc"].exitcode, "log_tail": _log_tail(trainer["log"])}
            trainer["proc"].join(timeout=10)
        if thread is not None:
            stop.set()
            thread.join(timeout=60)
            out["trainer"] = box[0] if box else {"error": "training thread did not report"}
        _sync(device)
    return out


def _ratios(m: dict[str, Any]) -> None:
    """Ratios to idle; the idle reference is the lower of the first and the last idle phase's
    figure (GPU clocks can differ between start and end; the lower one gives the larger ratio)."""
    idles = [m["phases"].get(p, {}) for p in ("idle", "idle_end")]
    ratios: dict[str, Any] = {}
    ref: dict[str, dict[str, float]] = {}
    for bs in BATCH_SIZES:
        got = [i[f"batch{bs}"] for i in idles if f"batch{bs}" in i]
        if got:
            ref[f"batch{bs}"] = {k: float(min(g[k] for g in got)) for k in ("service_p50_ms", "service_p99_ms", "sched_p99_ms")}
    left_out: dict[str, str] = {}
    for phase, figures in m["phases"].items():
        if phase.startswith("idle"):
            continue
        tr = figures.get("trainer")
        if any(f"batch{bs}" in figures for bs in BATCH_SIZES) and (not isinstance(tr, dict) or "error" in tr or not tr.get("steps")):
            # serving was measured, but no trainer ran (or it failed): not an interference figure
            left_out[phase] = (tr or {}).get("error") if isinstance(tr, dict) else "no trainer report"
            left_out[phase] = left_out[phase] or "the trainer took no step"
            continue
        for bs in BATCH_SIZES:
            a, b = ref.get(f"batch{bs}"), figures.get(f"batch{bs}")
            if a and b:
                ratios[f"{phase}_batch{bs}_p99"] = b["service_p99_ms"] / a["service_p99_ms"]
                ratios[f"{phase}_batch{bs}_p50"] = b["service_p50_ms"] / a["service_p50_ms"]
                ratios[f"{phase}_batch{bs}_sched_p99"] = b["sched_p99_ms"] / a["sched_p99_ms"]
    m["idle_reference"] = ref
    m["ratios_to_idle"] = ratios
    if left_out:
        m["ratios_left_out"] = left_out


# ---------------------------------------------------------------------------------------------
def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {"device": doc.get("env", {}).get("device"), "gpu": doc.get("env", {}).get("gpu")}
    st = doc.get("strategies", {})
    s["strategies_error"] = st.get("error")
    s["strategies"] = {
        k: {kk: v.get(kk) for kk in ("average_accuracy", "update_seconds", "param_device", "error", "skipped") if v.get(kk) is not None}
        for k, v in st.get("runs", {}).items()
    }
    s["cuda_vs_cpu"] = {
        k: {kk: v[kk] for kk in ("speedup_cpu_over_cuda_seconds", "average_accuracy_diff", "close", "on_cuda")}
        for k, v in st.get("comparison", {}).items()
    }
    tp = doc.get("trainer_path", {})
    s["trainer_path"] = {k: tp.get(k) for k in ("error", "param_device", "stream_priority_inside", "low_priority_stream_used", "thread_scheduler", "fit_seconds_mean", "export_max_abs_diff") if k in tp}
    inter = doc.get("interference", {})
    s["interference_error"] = inter.get("error")
    s["trainer_processes"] = {k: v.get("state") for k, v in inter.get("trainer_processes", {}).items()} or None
    s["worker_start_seconds"] = inter.get("worker_start_seconds")
    s["p99_ratios_to_idle"] = {}
    for label, m in inter.get("models", {}).items():
        ph = m.get("phases", {})
        s["p99_ratios_to_idle"][label] = {
            "idle_p99_ms": {bs: [ph.get(p, {}).get(f"batch{bs}", {}).get("service_p99_ms") for p in ("idle", "idle_end")] for bs in BATCH_SIZES},
            **{k: v for k, v in m.get("ratios_to_idle", {}).items() if k.endswith("_p99") and "sched" not in k},
            "trainer_steps_per_s": {p: f.get("trainer", {}).get("steps_per_s") for p, f in m.get("phases", {}).items() if isinstance(f, dict) and "trainer" in f},
            "errors": {p: f["error"] for p, f in m.get("phases", {}).items() if isinstance(f, dict) and "error" in f} or None,
            "trainer_errors": {
                p: f["trainer"]["error"] for p, f in m.get("phases", {}).items() if isinstance(f, dict) and isinstance(f.get("trainer"), dict) and "error" in f["trainer"]
            } or None,
            "skipped": [p for p, f in m.get("phases", {}).items() if isinstance(f, dict) and "skipped" in f] or None,
        }
    fam = doc.get("families", {})
    s["families"] = {
        r["name"]: {"error": r["error"]["error"]} if "error" in r else {
            **{f"{d}_update_s": r[d]["update_fit_seconds"] for d in ("cuda", "cpu") if d in r},
            **{f"{d}_accuracy": r[d]["updated_accuracy"] for d in ("cuda", "cpu") if d in r},
            "cpu_over_cuda": r.get("cpu_over_cuda_update"),
        }
        for r in fam.get("rows", [])
    } or fam.get("error")
    s["total_seconds"] = doc.get("total_seconds")
    return _r({k: v for k, v in s.items() if v not in (None, {}, [])})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for gpu-check.json")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="small sizes (a proof run on a CPU)")
    p.add_argument("--stream", default="recurring")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=128, help="MLP width of the strategies bench (its default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the bench runs (its default)")
    p.add_argument("--epochs", type=int, default=None, help="override every strategy's epochs (default: their own)")
    p.add_argument("--train-per-experience", type=int, default=None)
    p.add_argument("--requests", type=int, default=2000, help="requests per batch size per phase")
    p.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    p.add_argument("--wide", type=int, default=None, help="hidden width of the wide variant (8192 on CUDA, 512 on CPU)")
    p.add_argument("--train-samples", type=int, default=3000)
    p.add_argument("--ramp", type=float, default=0.5, help="seconds of training before serving is measured")
    p.add_argument("--budget-s", type=float, default=245.0, help="soft limit: later phases are skipped past it")
    p.add_argument("--worker-start-s", type=float, default=90.0, help="most seconds to wait for the trainer processes to be ready")
    p.add_argument("--families-old", type=int, default=2400, help="families part: first-concept samples in the update")
    p.add_argument("--families-new", type=int, default=800, help="families part: second-concept samples in the update")
    p.add_argument("--families-v1-epochs", type=int, default=10, help="families part: epochs of version 1")
    p.add_argument("--families-requests", type=int, default=300, help="families part: batch-1 requests to the served candidate")
    p.add_argument("--skip", default="", help="comma list of parts to skip: strategies,trainer_path,interference,families")
    args = p.parse_args(argv)

    t_start = time.monotonic()
    if args.device == "auto":
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    if args.quick:
        args.epochs = args.epochs or 3
        args.train_per_experience = args.train_per_experience or 200
        args.requests = min(args.requests, 300)
        args.train_samples = min(args.train_samples, 600)
        args.budget_s = min(args.budget_s, 170.0)
        args.families_old, args.families_new, args.families_v1_epochs = min(args.families_old, 300), min(args.families_new, 100), 2
        args.families_requests = min(args.families_requests, 50)
    if args.wide is None:
        args.wide = 8192 if device.type == "cuda" else 512
    skip = set(filter(None, args.skip.split(",")))
    rep = Report(Path(args.out))
    rep.doc["args"] = vars(args)
    try:
        if device.type == "cuda":
            torch.cuda.init()
        rep.doc["env"] = _env(device)
    except Exception as exc:
        rep.doc["env"] = _error(exc)
    rep.save()

    def left() -> float:
        return args.budget_s - (time.monotonic() - t_start)

    artifact = None
    if "strategies" not in skip:
        try:
            part_strategies(args, device, rep, deadline=time.monotonic() + 0.42 * left())
        except Exception as exc:
            rep.doc.setdefault("strategies", {}).update(_error(exc))
        rep.save()
    if "trainer_path" not in skip:
        try:
            t0 = time.perf_counter()
            _, artifact = part_trainer_path(args, device, rep)
            rep.doc["trainer_path"]["seconds"] = time.perf_counter() - t0
        except Exception as exc:
            rep.doc.setdefault("trainer_path", {}).update(_error(exc))
        rep.save()
    if "interference" not in skip:
        try:
            t0 = time.perf_counter()
            part_interference(args, device, artifact, rep, deadline=time.monotonic() + left())
            rep.doc["interference"]["seconds"] = time.perf_counter() - t0
        except Exception as exc:
            rep.doc.setdefault("interference", {}).update(_error(exc))
        rep.save()
    if "families" not in skip:
        from benchmarks.gpu_families import part_families

        try:
            t0 = time.perf_counter()
            part_families(args, device, rep, trainer_runner)
            rep.doc["families"]["seconds"] = time.perf_counter() - t0
        except Exception as exc:
            rep.doc.setdefault("families", {}).update(_error(exc))
        rep.save()
    rep.doc["total_seconds"] = time.monotonic() - t_start
    rep.doc["summary"] = _summary(rep.doc)
    rep.save()
    print(json.dumps(_r(rep.doc), indent=1, default=str))
    print("SUMMARY " + json.dumps(rep.doc["summary"], default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
