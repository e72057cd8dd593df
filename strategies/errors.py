"""Errors of the model factory, all under the project's one root (`ModelCIError`).

The trainer turns each into a failed-update event: it branches on `reason` (which goes into
the event) and `retryable` (never, for these: a bad name or bad value stays bad).
"""

from __future__ import annotations

from typing import Any

from services.common.errors import ModelCIError


class StrategyError(ModelCIError):
    """Root of the errors raised by `strategies`."""

    reason = "strategy"
    http_status = 400


class UnknownStrategy(StrategyError):
    """No strategy is registered, installed or importable under this name."""

    reason = "unknown_strategy"

    def __init__(self, name: str, available: list[str], detail: str = "") -> None:
        self.name = name
        self.available = available
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"unknown strategy {name!r}{extra}; available: {', '.join(available)}; "
            "or a dotted path 'package.module:ClassName'"
        )


class InvalidHyperparameters(StrategyError):
    """Hyperparameters a strategy refuses; `field` names the first bad one."""

    reason = "invalid_hyperparameters"

    def __init__(self, strategy: str, errors: list[dict[str, Any]]) -> None:
        self.strategy = strategy
        self.errors = errors
        """One entry per problem: ``{"field": name, "message": text}``."""
        self.field = errors[0]["field"] if errors else None
        lines = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"invalid hyperparameters for {strategy!r}: {lines}")


class InvalidTrainingData(StrategyError):
    """Samples a strategy cannot train on (empty, mismatched lengths, wrong dtype or shape)."""

    reason = "invalid_samples"


class IncompatibleState(StrategyError):
    """A persisted state that does not belong to this strategy or model (wrong name or shapes)."""

    reason = "incompatible_strategy_state"


class UnknownStream(StrategyError):
    """No drift stream under this name."""

    reason = "unknown_stream"
