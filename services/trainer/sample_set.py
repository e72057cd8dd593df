"""The samples of one update in memory: ids, inputs and labels, and how to hold some back.

Kept apart from the Kafka reader (`services.trainer.samples`) so the transport-free training
core (`services.trainer.training`) imports no client library.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from services.common.tensors import content_buckets


@dataclass
class SampleSet:
    """The usable samples of one request, in offset order, and what was skipped and why."""

    ids: list[str]
    x: np.ndarray
    """``[n, *input_shape]``: float32 for a floating-point input (FP16 trains in FP32), the
    integer type for token ids (`services.common.tensors.InputSpec.compute_dtype`)."""
    y: np.ndarray  # int64 [n]
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, holdout_fraction: float) -> tuple["SampleSet", "SampleSet"]:
        """(train, holdout): a sample is held back when the hash of its input falls in the fraction.

        Hashing the content (not the request id, not the position) puts every copy of an input on
        the same side, so an input that arrived twice cannot be trained on and scored as unseen;
        and the split stays the same whatever order or ranges the samples arrive in, so a re-run
        of a request evaluates on exactly the same samples.
        """
        hold = content_buckets(self.x) < holdout_fraction if len(self) else np.zeros(0, dtype=bool)
        if len(self) >= 2 and (hold.all() or not hold.any()):
            hold = np.zeros(len(self), dtype=bool)
            hold[:: max(2, round(1 / max(holdout_fraction, 1e-6)))] = True
        pick = lambda mask: SampleSet([i for i, m in zip(self.ids, mask) if m], self.x[mask], self.y[mask])  # noqa: E731
        return pick(~hold), pick(hold)
