"""The two bounds every benchmark is read against: naive fine-tuning and joint training."""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training import Naive as AvalancheNaive
from avalanche.training.supervised import Cumulative
from avalanche.training.templates import SupervisedTemplate

from strategies.avalanche_data import dataset_tensors, tensor_dataset
from strategies.avalanche_strategy import AvalancheStrategy
from strategies.registry import register


@register
class Naive(AvalancheStrategy):
    """Fine-tunes on each update's samples alone: cheap, and forgets older concepts."""

    name = "naive"

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        return AvalancheNaive(**common)


@register
class Joint(AvalancheStrategy):
    """Oracle: keeps every sample it was given and trains on all of them at each update
    (Avalanche's cumulative training). Memory and update time grow without bound; it is the
    upper bound benchmarks compare the practical strategies with."""

    name = "joint"

    def _make_template(self, **common: Any) -> SupervisedTemplate:
        return Cumulative(**common)

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return dataset_tensors(self._template.dataset)

    def _extra_state(self) -> dict[str, Any]:
        seen = self.memory()
        return {"x": None if seen is None else seen[0], "y": None if seen is None else seen[1]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        x, y = state["x"], state["y"]
        self._template.dataset = None if x is None else tensor_dataset(x, y)
