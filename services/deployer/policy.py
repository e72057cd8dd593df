"""A model's deployment policy: promotion mode, canary, gate thresholds and post-deploy watch.

Stored as a plain dict in the model's registry record (so the console can edit it) and read
through this dataclass, which fills defaults and rejects nonsense early. Every threshold of the
gate lives here, so each check is configurable per model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from services.common.errors import ConfigurationError


@dataclass(frozen=True)
class Policy:
    promotion: str = "auto"
    """``auto``: deploy as soon as the gate passes; ``manual``: hold until an approve command."""
    canary: str = "shadow"
    """``shadow``: score the candidate on the latest live samples before promotion; ``none``."""
    canary_share: float = 0.0
    """Share of traffic for a routed canary (Triton cannot split traffic: recorded only)."""
    shadow_samples: int = 200
    """How many of the latest live samples the shadow canary scores."""
    check_accuracy: bool = True
    """Check accuracy on recent samples the candidate was not trained on."""
    accuracy_margin: float = 0.0
    """Candidate accuracy on fresh samples must be >= serving accuracy + this margin."""
    min_fresh_samples: int = 30
    """Fewer fresh samples than this: fall back to a held-out slice of the training ranges."""
    holdout_fraction: float = 0.2
    """Share of inputs, by a hash of their content, that no update trains on: the trainer's
    holdout and the only samples the gate's accuracy and forgetting checks score (fresh ones
    after the candidate's ranges, or inside them when too few)."""
    validation_samples: int = 1000
    """Most samples one accuracy check scores (fresh: the latest; older concepts: an even spread):
    bounds the gate's time for large inputs (4,000 images cost it 20 s on a busy 2-core machine);
    1,000 samples put a standard error of at most 1.6 points on an accuracy."""
    confidence_z: float = 1.64
    """The accuracy, forgetting and shadow checks reject a candidate only when it misses its
    bound by more than this many standard errors of the paired (same samples) difference with
    serving: 1.64 is one-sided 95 %; 0 compares the point estimates, which fails an equally good
    candidate about half the time on a small set."""
    check_forgetting: bool = True
    """Check accuracy on a replay set of older concepts."""
    forgetting_tolerance: float = 0.05
    """Candidate accuracy on the replay set must be >= serving accuracy - this tolerance."""
    min_replay_samples: int = 30
    """Fewer replay samples than this: the forgetting check is skipped (recorded as such)."""
    check_latency: bool = True
    """Load the candidate in Triton (staging model) and compare its p99 with the serving one."""
    latency_ratio: float = 3.0
    """Candidate p99 must be <= serving p99 * ratio (or serving p99 + slack, the larger)."""
    latency_slack_ms: float = 25.0
    """Absolute slack on the latency bound, so noise never rejects a model: the probe's p99 on a
    busy 2-core machine serving 250 req/s moves by tens of milliseconds between two runs of
    the same model (it was 5 until 2026-12-04, and the demo registered 25 to pass)."""
    probe_requests: int = 100
    """Requests sent to each version in the latency probe."""
    shadow_tolerance: float = 0.05
    """Shadow accuracy must be >= the served predictions' accuracy - this tolerance."""
    watch_window: int = 200
    """Live joined samples of the new version after which the post-deploy watch ends."""
    watch_min_samples: int = 50
    """Live samples of the new version needed before the watch may roll back."""
    watch_tolerance: float = 0.05
    """Roll back when live accuracy of the new version < previous version's - this tolerance."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "Policy":
        raw = dict(raw or {})
        known = {f.name: f for f in fields(cls)}
        unknown = set(raw) - set(known)
        if unknown:
            raise ConfigurationError(f"unknown policy keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            kind = type(getattr(cls, key))
            if kind is bool and isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            values[key] = kind(value)
        policy = cls(**values)
        if policy.promotion not in ("auto", "manual"):
            raise ConfigurationError(f"promotion must be auto or manual, not {policy.promotion!r}")
        if policy.canary not in ("shadow", "none"):
            raise ConfigurationError(f"canary must be shadow or none, not {policy.canary!r}")
        if policy.confidence_z < 0:
            raise ConfigurationError("confidence_z must be >= 0")
        if policy.validation_samples < 1:
            raise ConfigurationError("validation_samples must be at least 1")
        if not 0.0 <= policy.holdout_fraction <= 1.0 or not 0.0 <= policy.canary_share <= 1.0:
            raise ConfigurationError("holdout_fraction and canary_share must lie in [0, 1]")
        return policy

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_policy_text(text: str) -> dict[str, Any]:
    """``promotion=manual,canary=none`` or a JSON object -> a validated policy dict."""
    import json

    text = text.strip()
    if not text:
        return Policy().as_dict()
    if text.startswith("{"):
        raw = json.loads(text)
    else:
        raw = dict(item.split("=", 1) for item in text.split(",") if item.strip())
    return Policy.from_dict(raw).as_dict()
