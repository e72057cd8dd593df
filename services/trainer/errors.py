"""Why an update can fail; each reason ends up in a failed Candidate's ``reason`` field."""

from __future__ import annotations

from services.common.errors import ModelCIError, TransientError


class UpdateFailed(ModelCIError):
    """An update request that cannot produce a candidate; never retried (the input is wrong)."""

    reason = "update_failed"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# The reasons a failed candidate can carry (bounded: they label a metric).
UNKNOWN_MODEL = "unknown_model"
UNKNOWN_BASE_VERSION = "unknown_base_version"
NO_SAMPLES = "no_samples"
OFFSETS_OUT_OF_RANGE = "offsets_out_of_range"
UNKNOWN_STRATEGY = "unknown_strategy"
INVALID_HYPERPARAMETERS = "invalid_hyperparameters"
ARTIFACT_INVALID = "artifact_invalid"
INTERNAL = "internal"

REASONS = (
    UNKNOWN_MODEL,
    UNKNOWN_BASE_VERSION,
    NO_SAMPLES,
    OFFSETS_OUT_OF_RANGE,
    UNKNOWN_STRATEGY,
    INVALID_HYPERPARAMETERS,
    ARTIFACT_INVALID,
    INTERNAL,
)


class Interrupted(TransientError):
    """Shutdown was asked for mid-update: the request stays uncommitted and is redone later."""

    reason = "interrupted"
