"""One update as a pure function: model, samples and strategy state in; candidate, metrics and
the next state out.

Nothing here touches Kafka, Redis, the artifact store or the registry, so the trainer service,
the GPU check (`benchmarks/gpu_check.py`) and anything else that wants to know what an update
does call this very function instead of a mirrored copy of it. What runs around the strategy's
fit (the trainer's interference control: a lowered thread, admission pauses, a low-priority CUDA
stream) comes in as ``run``, so the core stays free of it too.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
import torch

from services.common.tensors import InputSpec
from strategies.evaluation import accuracy
from services.trainer.sample_set import SampleSet
from services.trainer.weights import dump_state, fit
from strategies.architecture import Architecture, for_training, served_part
from strategies.base import CLStrategy as Strategy
from strategies.errors import IncompatibleState
from strategies.export import export_torchscript

_log = structlog.get_logger("modelci.trainer")

FitRunner = Callable[[Strategy, Callable[[], dict[str, float]]], dict[str, float]]
"""Runs the strategy's fit (the second argument) for the strategy; returns its metrics."""


def run_directly(_strategy: Strategy, fit_strategy: Callable[[], dict[str, float]]) -> dict[str, float]:
    return fit_strategy()


@dataclass
class TrainingJob:
    """Everything one update needs, already in memory."""

    architecture: Architecture
    spec: InputSpec
    strategy: type[Strategy]
    hyperparameters: dict[str, Any]
    samples: SampleSet
    base_weights: dict[str, torch.Tensor] | None = None
    """The base version's parameters (any prefix a scripted wrapper added is matched); None
    starts from the factory's own initialisation."""
    state: dict[str, Any] | None = None
    """The strategy's state after the previous update (its memory, EWC's importances); None or
    a state that no longer fits starts afresh."""
    holdout_fraction: float = 0.2
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class TrainingResult:
    model: torch.nn.Module
    """The served part of the trained module, on the CPU, in eval mode."""
    artifact: bytes
    """Its TorchScript export (class probabilities), what Triton serves."""
    weights: bytes
    """Its ``state_dict`` (``torch.save``), where the next update starts."""
    state: dict[str, Any]
    """The strategy's state to hand to the next update."""
    metrics: dict[str, float]
    state_restored: bool


def _rebuilt(job: TrainingJob) -> torch.nn.Module:
    """The team's module with the base weights, in the form strategies train."""
    module = job.architecture.build()
    if job.base_weights is not None:
        fit(module, job.base_weights)
    return for_training(module, job.architecture.output)


def train_candidate(job: TrainingJob, run: FitRunner = run_directly) -> TrainingResult:
    """Trains ``job``'s strategy on its samples (less a holdout split by content) and exports
    the result; accuracies of the base and the candidate on the holdout and on the strategy's
    memory (the older concepts it keeps) are in the metrics."""
    net = _rebuilt(job)
    base_net = copy.deepcopy(net).to(job.device)
    strategy = job.strategy(net, job.hyperparameters, device=str(job.device))
    restored = False
    if job.state is not None:
        try:
            strategy.load_state_dict(job.state)
            restored = True
        except IncompatibleState as exc:  # e.g. the model's shape changed: start the memory afresh
            _log.warning("strategy_state_incompatible", detail=str(exc))
            strategy = job.strategy(_rebuilt(job), job.hyperparameters, device=str(job.device))

    train, hold = job.samples.split(job.holdout_fraction)
    if len(train) == 0:
        train = job.samples
    memory = strategy.memory()
    shape = job.spec.shape
    mem_x, mem_y = memory if memory is not None else (np.zeros((0, *shape), job.spec.compute_dtype), np.zeros(0, np.int64))
    base_hold = accuracy(base_net, hold.x, hold.y, job.device)
    base_mem = accuracy(base_net, mem_x, mem_y, job.device)
    del base_net

    torch.manual_seed(job.seed)
    started = time.monotonic()
    train_metrics = run(strategy, lambda: strategy.train(torch.from_numpy(train.x), torch.from_numpy(train.y)))
    fit_seconds = time.monotonic() - started

    export_started = time.monotonic()
    cand_hold = accuracy(strategy.model, hold.x, hold.y, job.device)
    cand_mem = accuracy(strategy.model, mem_x, mem_y, job.device)
    trained = copy.deepcopy(served_part(strategy.model, job.architecture.output)).to("cpu").eval()
    artifact = export_torchscript(trained, tuple(shape), job.architecture.output, datatype=job.spec.datatype)
    weights = dump_state(trained.state_dict())
    metrics: dict[str, float] = {
        "samples_train": float(len(train)),
        "samples_holdout": float(len(hold)),
        "memory_size": float(len(mem_y)),
        "fit_seconds": round(fit_seconds, 3),
        "holdout_fraction": float(job.holdout_fraction),
    }
    for key, value in (
        ("accuracy_new_holdout", cand_hold),
        ("base_accuracy_new_holdout", base_hold),
        ("accuracy_memory", cand_mem),
        ("base_accuracy_memory", base_mem),
    ):
        if value is not None:
            metrics[key] = value
    for key, value in (train_metrics or {}).items():
        if isinstance(value, (int, float)) and np.isfinite(value):
            metrics[key if key == "loss" else f"train_{key}"] = float(value)
    metrics["export_seconds"] = round(time.monotonic() - export_started, 3)
    return TrainingResult(trained, artifact, weights, strategy.state_dict(), metrics, restored)
