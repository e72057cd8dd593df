"""What the demo does, in numbers (small values make the end-to-end test's scale)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEMO_STRATEGY = "replay"
"""The demo registers its model as the README tells a user to: the default strategy with its
default hyperparameters and the default policy (issue "Honest figures": a demo tuned apart from
the defaults shows figures a user would not get)."""


@dataclass
class DemoConfig:
    stream: str = "recurring"
    """Drift stream from the model factory; concept 0 trains version 1, concept 1 is the drift."""
    seed: int = 0
    rate: float = 250.0
    """Requests per second."""
    feedback_delay_s: float = 0.5
    """How long after its request the true label arrives."""
    warmup_s: float = 12.0
    """Time on the first concept before the switch (the 'before' accuracy)."""
    recovery_window_s: float = 8.0
    """Time measured on the new concept after the new version serves."""
    recurring_s: float = 10.0
    """Time back on the first concept at the end (shows what was kept)."""
    serve_timeout_s: float = 120.0
    """Longest wait for a new version after the switch before the demo gives up."""
    drain_timeout_s: float = 30.0
    """Longest wait for the last predictions once traffic stops."""
    train_epochs: int = 30
    """Epochs for version 1 on the first concept."""
    model_name: str = ""
    """Model name; empty picks a fresh ``digits-<id>``."""
    architecture: str = ""
    """Factory of the model (``package.module:function`` taking ``input_dim`` and ``num_classes``);
    empty: the demo's MLP (`services.demo.model.DEMO_ARCHITECTURE`)."""
    architecture_kwargs: dict = field(default_factory=dict)
    """More keyword arguments of the factory."""
    hyperparameters: dict | None = None
    """The strategy's hyperparameters registered with the model (as ``modelci model register
    --hyperparameters``); None: the strategy's defaults."""
