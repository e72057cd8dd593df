"""The built-in strategies; importing this package registers them all."""

from strategies.builtin import baselines, regularization, rehearsal  # noqa: F401
