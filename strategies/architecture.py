"""The team's own architecture in trainable form: a factory in their code, plus weights.

A registered model names the Python callable that builds its `torch.nn.Module` (a dotted path
``package.module:function`` or an entry point in the group ``modelci.models``) and its keyword
arguments; every version's weights are a ``state_dict`` read with ``torch.load(weights_only=True)``.
The trainer rebuilds the eager module from the factory, so every strategy of the zoo works on it
as on any `nn.Module` (deep copies for LwF, parameter walks for EWC and SI, train and eval modes
for BatchNorm and Dropout), and Triton serves a TorchScript export of it. Why a factory rather
than the TorchScript artifact itself or a ``torch.export`` program: docs/models.md.

``output`` says what the module returns. Strategies train on logits (cross-entropy); a module
that returns probabilities is trained through `LogProbabilities` (the log of a probability vector
is a valid logit vector: its softmax gives the probabilities back), and served as it is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

import torch
from torch import nn

from strategies.errors import StrategyError

ENTRY_POINT_GROUP = "modelci.models"
Output = Literal["logits", "probabilities"]
OUTPUTS: tuple[str, ...] = ("logits", "probabilities")


class ArchitectureError(StrategyError):
    """A factory that cannot be imported or called, or does not build an `nn.Module`."""

    reason = "architecture_invalid"


@dataclass(frozen=True)
class Architecture:
    """How to rebuild a registered model: ``factory(**kwargs)``, returning ``output``."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    output: Output = "logits"

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ArchitectureError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"factory": self.factory, "kwargs": dict(self.kwargs), "output": self.output}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(factory=str(data["factory"]), kwargs=dict(data.get("kwargs") or {}), output=data.get("output", "logits"))

    def build(self) -> nn.Module:
        """A fresh module from the factory (random initialisation; weights are loaded after)."""
        factory = load_factory(self.factory)
        try:
            module = factory(**self.kwargs)
        except Exception as exc:  # the team's code: any error is a clear refusal, not a crash
            raise ArchitectureError(f"{self.factory}(**{self.kwargs}) failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(module, nn.Module):
            raise ArchitectureError(f"{self.factory} returned {type(module).__name__}, not a torch.nn.Module")
        if isinstance(module, torch.jit.ScriptModule):
            raise ArchitectureError(f"{self.factory} returned a TorchScript module; return the eager nn.Module (docs/models.md)")
        return module


def load_factory(name: str) -> Callable[..., nn.Module]:
    """The callable behind an entry point name of ``modelci.models`` or a ``module:attr`` path."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    try:
        if name in eps:
            factory = eps[name].load()
        elif ":" in name:
            module_name, _, attr = name.partition(":")
            factory = importlib.import_module(module_name)
            for part in attr.split("."):
                factory = getattr(factory, part)
        else:
            raise ArchitectureError(
                f"model factory {name!r} is neither an installed '{ENTRY_POINT_GROUP}' entry point nor 'package.module:function'"
            )
    except (ImportError, AttributeError) as exc:
        raise ArchitectureError(f"cannot import model factory {name!r}: {exc}") from exc
    if not callable(factory):
        raise ArchitectureError(f"model factory {name!r} is not callable")
    return factory


class LogProbabilities(nn.Module):
    """Trains a module that returns probabilities as if it returned logits (their log)."""

    def __init__(self, model: nn.Module, eps: float = 1e-12) -> None:
        super().__init__()
        self.model = model
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.model(x).clamp_min(self.eps))


def for_training(model: nn.Module, output: Output) -> nn.Module:
    """The module strategies train: logits in either case, sharing ``model``'s parameters."""
    return LogProbabilities(model) if output == "probabilities" else model


def served_part(trained: nn.Module, output: Output) -> nn.Module:
    """The team's own module inside what `for_training` returned (its weights are the version's)."""
    return trained.model if output == "probabilities" and isinstance(trained, LogProbabilities) else trained


def match_state(target_keys: list[str], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """``source`` under ``target_keys``, finding the prefix a wrapper put before the names
    (a TorchScript export keeps the plain model's parameters under ``model.``), or None."""
    if not target_keys:
        return {}
    for key in source:
        for tk in target_keys:
            if key.endswith(tk):
                prefix = key[: len(key) - len(tk)]
                if all(prefix + k in source for k in target_keys):
                    return {k: source[prefix + k] for k in target_keys}
    return None


BUILTIN_MLP = "strategies.models:make_mlp"


def builtin_mlp(state: dict[str, torch.Tensor], input_dim: int, num_classes: int) -> Architecture | None:
    """The built-in MLP's architecture if ``state`` (e.g. a TorchScript export's) has its layout.

    Models registered from a TorchScript file alone are updatable only when they are this MLP;
    anything else registers its own factory.
    """
    from strategies.models import make_mlp

    widths = [int(v.shape[0]) for v in state.values() if v.ndim == 2]
    if not widths:
        return None
    candidate = Architecture(BUILTIN_MLP, {"input_dim": input_dim, "num_classes": num_classes, "hidden": widths[0]})
    target = make_mlp(input_dim, num_classes, widths[0]).state_dict()
    matched = match_state(list(target), state)
    if matched is None or any(tuple(matched[k].shape) != tuple(v.shape) for k, v in target.items()):
        return None
    return candidate
