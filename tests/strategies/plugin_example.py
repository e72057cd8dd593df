"""A custom strategy as a user would write one, loaded by dotted path in the tests.

It reuses the project's Avalanche glue: Avalanche's Naive template plus its replay plugin
with a class-balanced memory; the memory is exported and restored through the helpers.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training import Naive
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from pydantic import Field

from strategies.avalanche_data import dataset_tensors, load_policy_state, policy_state
from strategies.avalanche_strategy import AvalancheStrategy
from strategies.base import TrainingHyperparameters


class ClassBalancedReplay(AvalancheStrategy):
    """Replay whose memory is split evenly over classes."""

    name = "class-balanced-replay"

    class Hyperparameters(TrainingHyperparameters):
        mem_size: int = Field(200, ge=10)
        """Samples kept, split evenly over classes."""

    def _make_template(self, **common: Any) -> Any:
        size = self.hyperparameters.mem_size
        self._replay = ReplayPlugin(mem_size=size, storage_policy=ClassBalancedBuffer(size))
        return Naive(**{**common, "plugins": [*common["plugins"], self._replay]})

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return dataset_tensors(self._replay.storage_policy.buffer)

    def _extra_state(self) -> dict[str, Any]:
        return {"policy": policy_state(self._replay.storage_policy)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        load_policy_state(self._replay.storage_policy, state["policy"])


class NotAStrategy:
    """Something importable that is not a CLStrategy."""
