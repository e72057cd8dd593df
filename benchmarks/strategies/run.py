"""Replay a drift stream through CL strategies and measure them (``modelci bench strategies``).

Each strategy starts from the same seeded model (`build_model`: the built-in MLP, a bag of
embeddings for a stream of token ids, or a factory of the caller's), trains on the stream's
experiences in order (one `CLStrategy.train` call = one model update), and after each update
is tested on every concept. By default each strategy runs in its own process forked from a
preloaded server, so its peak memory is its own and a crash in one does not stop the others.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch

from services.common.tensors import is_integer
from strategies.evaluation import accuracy
from strategies.metrics import (
    average_accuracy,
    average_incremental_accuracy,
    backward_transfer,
    forgetting,
    max_forgetting_per_concept,
)
from strategies.models import make_mlp
from strategies.registry import DEFAULT_STRATEGY, ORACLE_STRATEGY, available, get_strategy
from strategies.streams import DEFAULT_STREAM, DriftStream, get_stream


@dataclass
class BenchConfig:
    stream: str = DEFAULT_STREAM
    strategies: list[str] | None = None
    """Names to run; None: every available strategy."""
    seed: int = 0
    hidden: int = 128
    """Hidden units of the MLP every strategy starts from."""
    train_per_experience: int | None = None
    """Override the stream's samples per update (smaller for quick checks)."""
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-strategy overrides; key "*" applies to every strategy."""
    isolate: bool = True
    """One process per strategy (honest peak memory); False runs them all here."""
    threads: int = 1
    """Torch threads per strategy run."""
    model: str = ""
    """Factory of the model every strategy starts from (``package.module:function`` or a
    ``modelci.models`` entry point, returning logits; sized by `build_model`); empty: the
    built-in MLP of ``hidden`` units, or `make_text` for a stream of token ids."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments of the factory."""


class PeakRSS:
    """Peak resident memory inside the block above `baseline` (default: the level at entry),
    in MiB.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) where allowed and reads
    ``VmHWM``; elsewhere samples RSS from a thread every few milliseconds.
    """

    def __init__(self, baseline: int | None = None) -> None:
        self._proc = psutil.Process()
        self.start = self._proc.memory_info().rss if baseline is None else baseline

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._hwm = True
        except OSError:
            self._hwm = False
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        if self._hwm:
            with open("/proc/self/status") as f:
                line = next(ln for ln in f if ln.startswith("VmHWM:"))
            self.peak = max(self.peak, int(line.split()[1]) * 1024)
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 2**20


def warm_up() -> None:
    """One throwaway update, so lazy one-time set-up (kernels, thread pools, Avalanche's
    internals) is not charged to the first strategy's peak memory."""
    torch.manual_seed(0)
    strategy = get_strategy("naive")(make_mlp(8, 2, hidden=8), {"epochs": 1, "batch_size": 8})
    strategy.train(torch.randn(32, 8), torch.randint(0, 2, (32,)))


TEXT_MODEL = "strategies.models:make_text"
"""What a stream of token ids trains when no model is named (an MLP cannot take ids)."""


def default_model(stream: DriftStream) -> str:
    """The factory `build_model` uses without one: empty (the MLP), or `TEXT_MODEL` for ids."""
    return TEXT_MODEL if is_integer(stream.datatype) else ""


def factory_kwargs(stream: DriftStream, factory: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The factory's keyword arguments for the stream: ``num_classes``; ``input_shape`` when the
    factory takes it (images, texts), else the flat ``input_dim``; the stream's ``vocab_size``
    when it takes that; then the caller's `kwargs`, which win."""
    import inspect

    from strategies.architecture import load_factory

    try:
        params = inspect.signature(load_factory(factory)).parameters
    except (TypeError, ValueError):  # a callable without a signature: the historical arguments
        params = {}
    sized: dict[str, Any] = {"num_classes": stream.num_classes}
    if "input_shape" in params:
        sized["input_shape"] = [int(d) for d in stream.input_shape]
    else:
        sized["input_dim"] = math.prod(stream.input_shape)
    if "vocab_size" in params and stream.vocab_size is not None:
        sized["vocab_size"] = int(stream.vocab_size)
    return {**sized, **(kwargs or {})}


def build_model(stream: DriftStream, hidden: int = 64, factory: str = "", kwargs: dict[str, Any] | None = None) -> torch.nn.Module:
    """The model a strategy starts from: the built-in MLP (or `default_model`), or the factory
    called with `factory_kwargs`."""
    factory = factory or default_model(stream)
    if not factory:
        return make_mlp(math.prod(stream.input_shape), stream.num_classes, hidden)
    from strategies.architecture import Architecture

    return Architecture(factory, factory_kwargs(stream, factory, kwargs)).build()


def run_strategy(
    stream: DriftStream,
    name: str,
    seed: int = 0,
    hyperparameters: dict[str, Any] | None = None,
    hidden: int = 64,
    device: str = "cpu",
    model_factory: str = "",
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one strategy over the whole stream; its figures as a JSON-ready dict."""
    cls = get_strategy(name)
    baseline = psutil.Process().memory_info().rss  # what the strategy holds counts too
    torch.manual_seed(seed)
    model = build_model(stream, hidden, model_factory, model_kwargs)
    strategy = cls(model, {"seed": seed, **(hyperparameters or {})}, device=device)
    matrix: list[list[float]] = []
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    peaks: list[float] = []
    for exp in stream.experiences:
        with PeakRSS(baseline) as peak:
            started, cpu_started = time.perf_counter(), time.process_time()
            strategy.train(exp.x_train, exp.y_train)
            seconds.append(time.perf_counter() - started)
            cpu_seconds.append(time.process_time() - cpu_started)
        peaks.append(peak.mb)
        matrix.append(
            [accuracy(strategy.model, *stream.test_set(k), strategy.device) for k in range(len(stream.concepts))]
        )
    order = [stream.concept_index(t) for t in range(len(stream.experiences))]
    per_concept = max_forgetting_per_concept(matrix, order)
    state = io.BytesIO()
    torch.save(strategy.state_dict(), state)
    return {
        "name": name,
        "average_accuracy": average_accuracy(matrix),
        "forgetting": forgetting(matrix, order),
        "bwt": backward_transfer(matrix, order),
        "update_seconds": sum(seconds) / len(seconds),
        "peak_memory_mb": max(0.0, max(peaks)),
        "first_concept_forgetting": per_concept[0],
        "forgetting_per_concept": per_concept,
        "average_incremental_accuracy": average_incremental_accuracy(matrix, order),
        "accuracy_matrix": matrix,
        "update_seconds_each": seconds,
        "update_cpu_seconds": sum(cpu_seconds) / len(cpu_seconds),
        "state_mb": len(state.getvalue()) / 2**20,
        "hyperparameters": strategy.hyperparameters.model_dump(mode="json"),
    }


def _isolated(config: BenchConfig, name: str) -> dict[str, Any]:
    """Body of a per-strategy process."""
    torch.set_num_threads(config.threads)
    stream = _stream(config)
    warm_up()
    return run_strategy(stream, name, config.seed, _overrides(config, name), config.hidden,
                        model_factory=config.model, model_kwargs=config.model_kwargs)


def _stream(config: BenchConfig) -> DriftStream:
    return get_stream(config.stream, config.seed, size=config.train_per_experience)


def _overrides(config: BenchConfig, name: str) -> dict[str, Any]:
    return {**config.hyperparameters.get("*", {}), **config.hyperparameters.get(name, {})}


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Every chosen strategy over the stream; the JSON document of the benchmark."""
    names = config.strategies or available()
    for name in names:  # fail fast on a bad name or bad hyperparameters, before any training
        get_strategy(name).validate_hyperparameters({"seed": config.seed, **_overrides(config, name)})
    stream = _stream(config)
    build_model(stream, config.hidden, config.model, config.model_kwargs)  # a bad factory fails here, before any training
    started = time.perf_counter()
    if config.isolate:
        results = _run_isolated(config, names)
    else:
        previous = torch.get_num_threads()
        torch.set_num_threads(config.threads)
        try:
            warm_up()
            results = [
                run_strategy(stream, n, config.seed, _overrides(config, n), config.hidden,
                             model_factory=config.model, model_kwargs=config.model_kwargs)
                for n in names
            ]
        finally:
            torch.set_num_threads(previous)
    return {
        "stream": stream.name,
        "default": DEFAULT_STRATEGY,
        "oracle": ORACLE_STRATEGY,
        "seed": config.seed,
        "model": config.model or default_model(stream) or f"strategies.models:make_mlp(hidden={config.hidden})",
        "input_shape": list(stream.input_shape),
        "datatype": stream.datatype,
        "concepts": stream.concepts,
        "order": [stream.concepts[stream.concept_index(t)] for t in range(len(stream.experiences))],
        "train_per_experience": [len(e.y_train) for e in stream.experiences],
        "total_seconds": time.perf_counter() - started,
        "strategies": results,
    }


SEED_FIGURES = ("average_accuracy", "forgetting", "bwt", "first_concept_forgetting", "average_incremental_accuracy",
                "update_seconds", "update_cpu_seconds", "peak_memory_mb", "state_mb")
"""Figures of one strategy that the several-seed report gives as mean and ``_std``."""


def run_seeds(config: BenchConfig, seeds: list[int]) -> dict[str, Any]:
    """`run_bench` once per seed (the stream, the initial model and every update seeded by it):
    each strategy's figures are the mean over the seeds with their (population) standard
    deviation as ``NAME_std``; its accuracy matrix is the mean matrix; every seed's figures stay
    under ``per_seed``. One seed gives a std of 0."""
    import dataclasses

    import numpy as np

    if not seeds:
        raise ValueError("at least one seed")
    reports = [run_bench(dataclasses.replace(config, seed=seed)) for seed in seeds]
    first = reports[0]
    rows = []
    for i, head in enumerate(first["strategies"]):
        runs = [r["strategies"][i] for r in reports]
        row: dict[str, Any] = {"name": head["name"], "hyperparameters": {k: v for k, v in head["hyperparameters"].items() if k != "seed"}}
        for key in SEED_FIGURES:
            values = np.asarray([run[key] for run in runs], dtype=np.float64)
            row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
        row["accuracy_matrix"] = np.mean([run["accuracy_matrix"] for run in runs], axis=0).tolist()
        row["forgetting_per_concept"] = np.mean([run["forgetting_per_concept"] for run in runs], axis=0).tolist()
        row["per_seed"] = [{"seed": seed, **{k: run[k] for k in SEED_FIGURES}} for seed, run in zip(seeds, runs)]
        rows.append(row)
    return {**{k: v for k, v in first.items() if k not in ("seed", "strategies", "total_seconds")},
            "seeds": list(seeds), "total_seconds": sum(r["total_seconds"] for r in reports), "strategies": rows}


def _run_isolated(config: BenchConfig, names: list[str]) -> list[dict[str, Any]]:
    # A forkserver imports torch and Avalanche once; each strategy then runs in a fresh fork
    # of it (max_tasks_per_child=1), so memory figures do not carry over between strategies.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, max_tasks_per_child=1) as pool:
        return [pool.submit(_isolated, config, name).result() for name in names]
