"""The one interface every continual-learning strategy implements, and its hyperparameters.

A strategy instance lives for one model's update lifecycle: the trainer builds it around the
model (with the base version's weights loaded), restores its persisted state, calls `train`
with the new samples, reads `memory()` for the old-data evaluation, and persists
`state_dict()` for the next update, possibly in another process after a restart.

Like River's estimators, constructor arguments stay public (`hyperparameters`, `device`,
`model`) and learned state is private, rebuilt from `load_state_dict`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strategies.errors import InvalidHyperparameters, InvalidTrainingData

STATE_FORMAT = 1
"""Bumped when the layout of `state_dict()` changes incompatibly."""


class TrainingHyperparameters(BaseModel):
    """What every strategy trains with; strategies subclass it to add their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    lr: float = Field(1e-3, gt=0.0, le=10.0)
    """Learning rate of the optimizer."""
    epochs: int = Field(20, ge=1, le=10_000)
    """Passes over each update's data."""
    batch_size: int = Field(32, ge=1, le=65_536)
    """Mini-batch size of the new data."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimizer; its state (Adam moments, SGD momentum) persists across updates."""
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    """SGD momentum (ignored by Adam)."""
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    """L2 penalty applied by the optimizer."""
    seed: int = Field(0, ge=0)
    """Seeds shuffling and sampling of each update (mixed with the update counter), so a
    restarted trainer makes the same choices as one that never stopped."""


def parse_hyperparameters(
    strategy: str, cls: type[BaseModel], value: BaseModel | dict[str, Any] | None
) -> Any:
    """Validate `value` into an instance of `cls`, or raise `InvalidHyperparameters`."""
    if value is None:
        value = {}
    elif isinstance(value, cls):
        return value
    elif isinstance(value, BaseModel):
        value = value.model_dump()
    elif not isinstance(value, dict):
        raise InvalidHyperparameters(
            strategy, [{"field": "<root>", "message": f"expected a mapping, got {type(value).__name__}"}]
        )
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]) or "<root>", "message": err["msg"]}
            for err in exc.errors()
        ]
        raise InvalidHyperparameters(strategy, errors) from None


KEPT_INTEGER_DTYPES = (torch.int64, torch.int32)
"""Input dtypes passed to the model unchanged: token ids and categorical codes (INT64, INT32).
Casting them to float would make them unusable as embedding indices."""


def check_samples(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples on the CPU with int64 labels, or `InvalidTrainingData`.

    Integer inputs of a declared integer datatype (int64, int32) stay as they are; every other
    input becomes float32 (FP16 models train in float32, and their export casts FP16 inputs:
    `strategies.export`), so a strategy sees one floating dtype whatever the caller sent.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InvalidTrainingData("x and y must be torch tensors")
    if x.ndim < 2 or y.ndim != 1:
        raise InvalidTrainingData(f"expected x [n, *shape] and y [n], got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise InvalidTrainingData(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise InvalidTrainingData("no samples to train on")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        raise InvalidTrainingData(f"labels must be integers, got {y.dtype}")
    if (y < 0).any():
        raise InvalidTrainingData("labels must be non-negative class indices")
    if x.is_complex():
        raise InvalidTrainingData(f"inputs must be real numbers, got {x.dtype}")
    if x.dtype in KEPT_INTEGER_DTYPES:
        x = x.detach().to("cpu")
    else:
        x = x.detach().to("cpu", torch.float32)
        if not torch.isfinite(x).all():
            raise InvalidTrainingData("inputs contain NaN or infinite values")
    return x.contiguous(), y.detach().to("cpu", torch.int64).contiguous()


class CLStrategy:
    """A continual-learning strategy: learns each experience of new data without forgetting.

    Subclasses set `name` (registry name) and `Hyperparameters` (a pydantic model with
    defaults and bounds) and implement the five methods below.
    """

    name: ClassVar[str] = ""
    Hyperparameters: ClassVar[type[BaseModel]] = TrainingHyperparameters

    def __init__(
        self,
        model: torch.nn.Module,
        hyperparameters: BaseModel | dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.hyperparameters = self.validate_hyperparameters(hyperparameters)
        self.device = torch.device(device)
        self.model = model.to(self.device)

    @classmethod
    def validate_hyperparameters(cls, value: BaseModel | dict[str, Any] | None) -> Any:
        """Hyperparameters with defaults filled in; `InvalidHyperparameters` on a bad value.

        The trainer calls this before it loads anything, to fail an update request early.
        """
        return parse_hyperparameters(cls.name or cls.__name__, cls.Hyperparameters, value)

    def train(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Learn one experience: inputs ``[n, *shape]`` (float32, or int64/int32 ids kept as
        they are: `check_samples`), int64 labels ``[n]``.

        Returns training figures: at least ``loss`` (mean loss of the last epoch) and
        ``seconds`` (wall time of the update).
        """
        raise NotImplementedError

    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Samples of older data this strategy keeps (CPU tensors), or None if it keeps none."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything to persist across updates and restarts, except the model's own weights.

        Only tensors (on the CPU), numbers, strings, booleans, None, lists and dicts, so that
        ``torch.load(..., weights_only=True)`` reads it back. The caller owns the weights
        (``model.state_dict()``): a rejected candidate must not leak into the next base.
        """
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (`IncompatibleState` if it is not ours)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hyperparameters!r}, device={str(self.device)!r})"
