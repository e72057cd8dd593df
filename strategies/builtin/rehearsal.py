"""Strategies that keep a bounded memory of older samples: replay (the default), GDumb,
ER-ACE and A-GEM. Their memories are what the trainer evaluates old-data accuracy on."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import torch
from avalanche.benchmarks.utils.data_loader import GroupBalancedInfiniteDataLoader
from avalanche.training import AGEM as AvalancheAGEM
from avalanche.training import Naive as AvalancheNaive
from avalanche.training.plugins import AGEMPlugin, GDumbPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer, ExperienceBalancedBuffer
from avalanche.training.supervised import ER_ACE as AvalancheERACE
from avalanche.training.templates import SupervisedTemplate
from pydantic import Field

from strategies.avalanche_data import (
    cat_memories,
    dataset_tensors,
    detached_copy,
    load_policy_state,
    policy_state,
    tensor_dataset,
)
from strategies.avalanche_strategy import AvalancheStrategy
from strategies.base import TrainingHyperparameters
from strategies.registry import register


class ReplayHyperparameters(TrainingHyperparameters):
    # Defaults sized for the loop (docs/strategies.md): an update of the demo's MLP trains in
    # about 2 s on one low-priority CPU thread under serving load, inside the 20 s drift-to-
    # serving goal; two memory samples per new sample keep the older concepts. (Until 2026-12-04:
    # 30 epochs, batch 32, lr 1e-3, picked on the stream the strategies bench reported on.)
    epochs: int = Field(10, ge=1, le=10_000)
    """Passes over each update's data."""
    batch_size: int = Field(64, ge=1, le=65_536)
    """New samples per mini-batch (plus `batch_size_mem` from the memory)."""
    lr: float = Field(3e-3, gt=0.0, le=10.0)
    """Learning rate of the optimizer."""
    mem_size: int = Field(1000, ge=1, le=10_000_000)
    """Samples kept in the replay memory, shared by the experiences (or classes) seen."""
    batch_size_mem: int | None = Field(64, ge=1, le=65_536)
    """Memory samples mixed into each mini-batch; None: as many as `batch_size`."""
    balance: Literal["experience", "class"] = "experience"
    """Split the memory evenly over past updates, or over classes."""


@register
class Replay(AvalancheStrategy):
    """Experience replay (the default): each mini-batch of new data is mixed with as many
    samples drawn from a reservoir memory of earlier updates."""

    name = "replay"
    Hyperparameters = ReplayHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        hp = self.hyperparameters
        policy = (
            ExperienceBalancedBuffer(max_size=hp.mem_size, adaptive_size=True)
            if hp.balance == "experience"
            else ClassBalancedBuffer(max_size=hp.mem_size, adaptive_size=True)
        )
        plugin = ReplayPlugin(
            mem_size=hp.mem_size,
            batch_size=hp.batch_size,
            batch_size_mem=hp.batch_size_mem or hp.batch_size,
            storage_policy=policy,
        )
        return AvalancheNaive(**{**common, "plugins": [*common["plugins"], plugin]})

    @property
    def _policy(self) -> Any:
        return self._plugin(ReplayPlugin).storage_policy

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return dataset_tensors(self._policy.buffer)

    def _extra_state(self) -> dict[str, Any]:
        return {"policy": policy_state(self._policy)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        load_policy_state(self._policy, state["policy"])


class GDumbHyperparameters(TrainingHyperparameters):
    mem_size: int = Field(1000, ge=1, le=10_000_000)
    """Samples kept, balanced over classes; the model is retrained on them alone."""


class _InPlaceGDumbPlugin(GDumbPlugin):
    """Avalanche's GDumb plugin, resetting the model's weights in place.

    The stock plugin swaps in a fresh copy of the initial model at each update, so hooks the
    caller put on `strategy.model` (the trainer's admission control) would not see the
    training steps. Here the same model object is reset to the initial weights, and its
    optimizer moments cleared, which is what training from scratch means.
    """

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        if self.init_model is None:
            self.init_model = detached_copy(strategy.model)
        else:
            strategy.model.load_state_dict(self.init_model.state_dict())
            strategy.optimizer.state = defaultdict(dict)
        strategy.model_adaptation(self.init_model)


@register
class GDumb(AvalancheStrategy):
    """GDumb: keeps a class-balanced memory and retrains the model from its initial weights
    on that memory only, at every update."""

    name = "gdumb"
    Hyperparameters = GDumbHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        # Avalanche's GDumb template is Naive plus the GDumb plugin.
        plugin = _InPlaceGDumbPlugin(mem_size=self.hyperparameters.mem_size)
        return AvalancheNaive(**{**common, "plugins": [*common["plugins"], plugin]})

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return dataset_tensors(self._plugin(GDumbPlugin).storage_policy.buffer)

    def _extra_state(self) -> dict[str, Any]:
        plugin = self._plugin(GDumbPlugin)
        init = plugin.init_model
        return {
            "policy": policy_state(plugin.storage_policy),
            "init_model": None if init is None else {k: v.detach().cpu().clone() for k, v in init.state_dict().items()},
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        plugin = self._plugin(GDumbPlugin)
        load_policy_state(plugin.storage_policy, state["policy"])
        if state["init_model"] is None:
            plugin.init_model = None
        else:
            plugin.init_model = detached_copy(self.model)
            plugin.init_model.load_state_dict(state["init_model"])


class ERACEHyperparameters(TrainingHyperparameters):
    mem_size: int = Field(1000, ge=1, le=10_000_000)
    """Samples kept, balanced over classes."""
    batch_size_mem: int = Field(32, ge=1, le=65_536)
    """Memory samples per mini-batch."""


@register
class ERACE(AvalancheStrategy):
    """ER-ACE: replay with an asymmetric cross-entropy that keeps new-class logits from
    overwriting old ones."""

    name = "er_ace"
    Hyperparameters = ERACEHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        hp = self.hyperparameters
        return AvalancheERACE(mem_size=hp.mem_size, batch_size_mem=hp.batch_size_mem, **common)

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return dataset_tensors(self._template.storage_policy.buffer)

    def _extra_state(self) -> dict[str, Any]:
        return {"policy": policy_state(self._template.storage_policy)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        load_policy_state(self._template.storage_policy, state["policy"])


class AGEMHyperparameters(TrainingHyperparameters):
    patterns_per_exp: int = Field(256, ge=1, le=1_000_000)
    """Samples remembered from each update (the memory grows with the number of updates)."""
    sample_size: int = Field(64, ge=1, le=65_536)
    """Memory samples used for the reference gradient at each step."""


@register
class AGEM(AvalancheStrategy):
    """A-GEM: projects each gradient so that the loss on a memory sample does not increase."""

    name = "agem"
    Hyperparameters = AGEMHyperparameters

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        hp = self.hyperparameters
        return AvalancheAGEM(patterns_per_exp=hp.patterns_per_exp, sample_size=hp.sample_size, **common)

    def _before_train(self) -> None:
        # Rebuild the memory sampler inside the seeded scope, so a restored strategy draws the
        # same reference batches as one that never stopped.
        plugin = self._plugin(AGEMPlugin)
        if plugin.buffers:
            plugin.buffer_dataloader = GroupBalancedInfiniteDataLoader(
                plugin.buffers,
                batch_size=max(plugin.sample_size // len(plugin.buffers), 1),
                num_workers=0,
                pin_memory=False,
                persistent_workers=False,
            )
            plugin.buffer_dliter = iter(plugin.buffer_dataloader)

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return cat_memories([dataset_tensors(b) for b in self._plugin(AGEMPlugin).buffers])

    def _extra_state(self) -> dict[str, Any]:
        buffers = [dataset_tensors(b) for b in self._plugin(AGEMPlugin).buffers]
        return {"buffers": [{"x": b[0], "y": b[1]} for b in buffers if b is not None]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        plugin = self._plugin(AGEMPlugin)
        plugin.buffers = [tensor_dataset(b["x"], b["y"]) for b in state["buffers"]]
