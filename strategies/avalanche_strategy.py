"""`CLStrategy` on top of an Avalanche training template.

Each call to `train` wraps the new samples in one Avalanche experience and runs the
template's own training loop with its plugins (replay, EWC, LwF, ...). What the template
learns across experiences (buffers, importances, the previous model, the clock that numbers
experiences, optimizer moments) is exported to plain tensors by `state_dict` and put back by
`load_state_dict`, so updates continue across trainer restarts exactly as without one.
"""

from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from pydantic import BaseModel

from strategies.avalanche_data import tensor_dataset, to_cpu
from strategies.base import STATE_FORMAT, CLStrategy, check_samples
from strategies.errors import IncompatibleState

_CLOCK_FIELDS = (
    "train_iterations",
    "train_exp_counter",
    "train_exp_epochs",
    "train_exp_iterations",
    "train_epoch_iterations",
    "total_iterations",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Avalanche's deprecation and 'no loggers' warnings around its calls.

    Avalanche resets the filters inside its deprecated functions, so the display hook is
    muted too; `catch_warnings` restores both on the way out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.showwarning = lambda *args, **kwargs: None
        yield


@contextlib.contextmanager
def seeded(seed: int, update: int, device: torch.device) -> Iterator[None]:
    """Seed torch, numpy and `random` for one update, restoring the caller's generators."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            mixed = (seed * 1_000_003 + update) % (2**31)
            torch.manual_seed(mixed)
            random.seed(mixed)
            np.random.seed(mixed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


class _LossMeter(SupervisedPlugin):
    """Mean training loss (including regularisation terms) over the last epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = float("nan")
        self.iterations = 0
        self._total = 0.0
        self._count = 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.iterations = 0

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._total, self._count = 0.0, 0

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        n = len(strategy.mb_y)
        self._total += float(strategy.loss.detach()) * n
        self._count += n
        self.iterations += 1

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self.loss = self._total / max(self._count, 1)


def silent_evaluator() -> EvaluationPlugin:
    """An evaluation plugin with no metrics and no loggers: nothing printed, nothing written."""
    with quiet():
        return EvaluationPlugin(loggers=[], collect_all=False)


class AvalancheStrategy(CLStrategy):
    """Base of the built-in strategies: subclasses only build their Avalanche template and,
    where they keep memory, say how to export and restore it (`_extra_state`)."""

    def __init__(
        self,
        model: torch.nn.Module,
        hyperparameters: BaseModel | dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(model, hyperparameters, device)
        self._updates = 0
        self._meter = _LossMeter()
        self._optimizer = self._make_optimizer()
        with quiet():
            self._template = self._make_template(
                model=self.model,
                optimizer=self._optimizer,
                criterion=torch.nn.CrossEntropyLoss(),
                train_mb_size=self.hyperparameters.batch_size,
                train_epochs=self.hyperparameters.epochs,
                eval_mb_size=max(self.hyperparameters.batch_size, 256),
                device=self.device,
                plugins=[self._meter],
                evaluator=silent_evaluator(),
            )

    # -- what subclasses provide ---------------------------------------------------------
    def _make_template(self, **common: Any) -> SupervisedTemplate:
        """The Avalanche template (strategy) to train with; `common` holds the shared args."""
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Strategy-specific state (buffers, importances) as plain tensors and numbers."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `_extra_state` returned."""

    def _before_train(self) -> None:
        """Runs inside the update's seeded scope, just before the template trains."""

    def _after_train(self) -> None:
        """Runs right after the template trained (e.g. to drop state nothing reads again)."""

    def _plugin(self, cls: type[SupervisedPlugin]) -> Any:
        """The template's plugin of type `cls` (built-in wrappers create their own)."""
        return next(p for p in self._template.plugins if isinstance(p, cls))

    # -- the interface -------------------------------------------------------------------
    def train(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        x, y = check_samples(x, y)
        experience = DatasetExperience(dataset=tensor_dataset(x, y), current_experience=self._updates)
        started = time.perf_counter()
        with quiet(), seeded(self.hyperparameters.seed, self._updates, self.device):
            self._before_train()
            self._template.train(experience, eval_streams=[])
        self._adopt_template_model()
        self._after_train()
        self._updates += 1
        return {
            "loss": float(self._meter.loss),
            "seconds": time.perf_counter() - started,
            "samples": float(len(y)),
            "iterations": float(self._meter.iterations),
            "updates": float(self._updates),
        }

    def state_dict(self) -> dict[str, Any]:
        clock = self._template.clock
        return {
            "format": STATE_FORMAT,
            "strategy": self.name,
            "updates": self._updates,
            "hyperparameters": self.hyperparameters.model_dump(mode="json"),
            "param_shapes": self._param_shapes(),
            "clock": {f: int(getattr(clock, f)) for f in _CLOCK_FIELDS},
            "optimizer": {
                "kind": self.hyperparameters.optimizer,
                "state": to_cpu(self._optimizer.state_dict()["state"]),
            },
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise IncompatibleState(f"not a strategy state of format {STATE_FORMAT}")
        if state.get("strategy") != self.name:
            raise IncompatibleState(
                f"state of strategy {state.get('strategy')!r} cannot load into {self.name!r}"
            )
        if state.get("param_shapes") != self._param_shapes():
            raise IncompatibleState(f"{self.name!r} state was saved for a model of another shape")
        try:
            self._updates = int(state["updates"])
            for field in _CLOCK_FIELDS:
                setattr(self._template.clock, field, int(state["clock"][field]))
            self._load_optimizer_state(state["optimizer"])
            self._load_extra_state(state["extra"])
        except IncompatibleState:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise IncompatibleState(f"cannot restore {self.name!r} state: {exc!r}") from exc

    # -- helpers -------------------------------------------------------------------------
    def _param_shapes(self) -> dict[str, list[int]]:
        return {name: list(p.shape) for name, p in self.model.named_parameters()}

    def _make_optimizer(self) -> torch.optim.Optimizer:
        hp = self.hyperparameters
        params = self.model.parameters()
        if hp.optimizer == "sgd":
            return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)

    def _load_optimizer_state(self, saved: dict[str, Any]) -> None:
        """Restore moments only (learning rate and the like come from today's hyperparameters),
        and only when the optimizer kind is unchanged and every moment fits its parameter."""
        if saved["kind"] != self.hyperparameters.optimizer or not saved["state"]:
            return
        params = list(self.model.parameters())
        for index, moments in saved["state"].items():
            if int(index) >= len(params):
                raise IncompatibleState("optimizer state has more parameters than the model")
            for value in moments.values():
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != params[int(index)].shape:
                    raise IncompatibleState("optimizer state does not fit the model's parameters")
        current = self._optimizer.state_dict()
        current["state"] = saved["state"]
        self._optimizer.load_state_dict(current)
        # Tell Avalanche the optimizer is already set up, or its first call resets the moments.
        self._template.optimized_param_id = dict(self.model.named_parameters())

    def _adopt_template_model(self) -> None:
        """Keep `self.model` the trained one when a template swaps models (Avalanche's stock
        GDumb plugin does, in a custom strategy): copy the weights back in place and hand the
        template our object again."""
        if self._template.model is not self.model:
            self.model.load_state_dict(self._template.model.state_dict())
            self._template.model = self.model
