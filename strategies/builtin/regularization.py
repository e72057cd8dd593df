"""Strategies that keep no samples, only statistics of the old model: EWC, SI and LwF."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import torch
from avalanche.training import EWC as AvalancheEWC
from avalanche.training import LwF as AvalancheLwF
from avalanche.training import Naive as AvalancheNaive
from avalanche.training.plugins import EWCPlugin, LwFPlugin, SynapticIntelligencePlugin
from avalanche.training.templates import SupervisedTemplate
from pydantic import Field

from strategies.avalanche_data import detached_copy, param_state, params_from_state
from strategies.avalanche_strategy import AvalancheStrategy
from strategies.base import TrainingHyperparameters
from strategies.registry import register


class EWCHyperparameters(TrainingHyperparameters):
    ewc_lambda: float = Field(1000.0, ge=0.0, le=1e9)
    """Weight of the penalty that keeps important weights near their old values."""
    mode: Literal["online", "separate"] = "online"
    """`online`: one running importance (constant memory); `separate`: one per update."""
    decay_factor: float = Field(0.9, gt=0.0, le=1.0)
    """How much of the old importance survives each update (online mode)."""


@register
class EWC(AvalancheStrategy):
    """Elastic Weight Consolidation: a quadratic penalty weighted by Fisher importances."""

    name = "ewc"
    Hyperparameters = EWCHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        hp = self.hyperparameters
        decay = hp.decay_factor if hp.mode == "online" else None
        return AvalancheEWC(ewc_lambda=hp.ewc_lambda, mode=hp.mode, decay_factor=decay, **common)

    def _after_train(self) -> None:
        # Online mode only ever reads the latest entries; Avalanche keeps every importance.
        plugin = self._plugin(EWCPlugin)
        if self.hyperparameters.mode == "online":
            latest = max(plugin.importances, default=None)
            for t in [t for t in plugin.importances if t != latest]:
                del plugin.importances[t]

    def _extra_state(self) -> dict[str, Any]:
        plugin = self._plugin(EWCPlugin)
        return {
            "saved_params": {str(t): param_state(p) for t, p in plugin.saved_params.items() if p},
            "importances": {str(t): param_state(p) for t, p in plugin.importances.items() if p},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        plugin = self._plugin(EWCPlugin)
        plugin.saved_params = defaultdict(
            dict, {int(t): params_from_state(p, self.device) for t, p in state["saved_params"].items()}
        )
        plugin.importances = defaultdict(
            dict, {int(t): params_from_state(p, self.device, "imp_") for t, p in state["importances"].items()}
        )


class _CopyingSIPlugin(SynapticIntelligencePlugin):
    """Avalanche's SI plugin with its weight snapshots copied.

    Avalanche 0.6.0 snapshots weights with ``param.detach().cpu().flatten()``, which on the
    CPU is a view of the live parameter, not a copy: the reference weights then move with
    training, the path integral is always zero and the penalty vanishes (SI = naive). Cloning
    the two snapshots that must outlive the step makes SI work on the CPU as on CUDA.
    """

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        super().before_training_exp(strategy, **kwargs)
        for p in self.ewc_data[0].values():
            p.data = p.data.clone()

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        super().before_training_iteration(strategy, **kwargs)
        for p in self.syn_data["old_theta"].values():
            p.data = p.data.clone()


class SIHyperparameters(TrainingHyperparameters):
    si_lambda: float = Field(1000.0, ge=0.0, le=1e9)
    """Weight of the synaptic-intelligence penalty."""
    eps: float = Field(1e-7, gt=0.0, le=1.0)
    """Damping of the importance denominator."""


@register
class SI(AvalancheStrategy):
    """Synaptic Intelligence: importances accumulated online along the training path."""

    name = "si"
    Hyperparameters = SIHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        # Avalanche's SynapticIntelligence template is Naive plus this plugin.
        hp = self.hyperparameters
        plugin = _CopyingSIPlugin(si_lambda=hp.si_lambda, eps=hp.eps)
        return AvalancheNaive(**{**common, "plugins": [*common["plugins"], plugin]})

    def _extra_state(self) -> dict[str, Any]:
        plugin = self._plugin(SynapticIntelligencePlugin)
        return {
            "ewc_data": [param_state(plugin.ewc_data[0]), param_state(plugin.ewc_data[1])],
            "syn_data": {k: param_state(v) for k, v in plugin.syn_data.items()},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        # Avalanche keeps SI's records on the CPU whatever the training device.
        cpu = torch.device("cpu")
        plugin = self._plugin(SynapticIntelligencePlugin)
        plugin.ewc_data = (
            params_from_state(state["ewc_data"][0], cpu),
            params_from_state(state["ewc_data"][1], cpu, "imp_"),
        )
        plugin.syn_data = {k: params_from_state(v, cpu, f"{k}_") for k, v in state["syn_data"].items()}


class LwFHyperparameters(TrainingHyperparameters):
    alpha: float = Field(1.0, ge=0.0, le=1e6)
    """Weight of the distillation loss towards the previous model's outputs."""
    temperature: float = Field(2.0, gt=0.0, le=1e3)
    """Softmax temperature of the distillation."""


@register
class LwF(AvalancheStrategy):
    """Learning without Forgetting: distils the previous model's outputs on the new data."""

    name = "lwf"
    Hyperparameters = LwFHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        hp = self.hyperparameters
        return AvalancheLwF(alpha=hp.alpha, temperature=hp.temperature, **common)

    def _after_train(self) -> None:
        # Avalanche deep-copies the model as the teacher; drop the caller's hooks from it.
        lwf = self._plugin(LwFPlugin).lwf
        if lwf.prev_model is not None:
            lwf.prev_model = detached_copy(lwf.prev_model)

    def _extra_state(self) -> dict[str, Any]:
        lwf = self._plugin(LwFPlugin).lwf
        prev = lwf.prev_model
        return {
            "prev_model": None if prev is None else {k: v.detach().cpu().clone() for k, v in prev.state_dict().items()},
            "expcount": int(lwf.expcount),
            "prev_classes": {str(t): sorted(int(c) for c in cs) for t, cs in lwf.prev_classes_by_task.items()},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        lwf = self._plugin(LwFPlugin).lwf
        if state["prev_model"] is None:
            lwf.prev_model = None
        else:
            lwf.prev_model = detached_copy(self.model)
            lwf.prev_model.load_state_dict(state["prev_model"])
        lwf.expcount = int(state["expcount"])
        lwf.prev_classes_by_task = defaultdict(
            set, {int(t): set(cs) for t, cs in state["prev_classes"].items()}
        )
