"""Triton's failures as the project's errors, each knowing whether a retry can help: one owner
for the inference service and the deployer.

Each Triton adapter (the inference service's `services.inference.triton`, the deployer's
`services.deployer.triton_ops`) maps every client exception to one of these, so callers branch
on the class alone: an outage is retried (for ever by inference, with a bounded backoff by the
deployer, which then leaves its candidate unacknowledged), a rejection is isolated and
dead-lettered, an unknown model is dead-lettered at once.
"""

from __future__ import annotations

from services.common.errors import ModelCIError, TransientError


class TritonUnavailable(TransientError):
    """Triton cannot answer now: connection refused, timeout, 503, overloaded."""

    reason = "triton_unavailable"


class ModelNotReady(TritonUnavailable):
    """The model is in Triton's repository but not loaded (loading, unloaded, server restarted)."""

    reason = "model_not_ready"


class ModelMissing(ModelCIError):
    """Triton answered 404 for a model or version; whether it is unknown needs a second look."""

    reason = "model_missing"


class TritonRejected(ModelCIError):
    """Triton refused the request itself (400-class): the input is at fault, not the server."""

    reason = "triton_rejected"
    http_status = 400


class TritonInternal(TritonRejected):
    """Triton failed while running the model (500): a bad input or a broken model instance.

    Retried a few times (an instance may be restarting); if it persists the batch is bisected
    so that only the requests that still fail alone are dead-lettered.
    """

    http_status = 500


class TritonLoadFailed(ModelCIError):
    """Triton answered but refused the model (bad config, backend error): not retryable."""

    reason = "triton_load_failed"


class TritonRequestFailed(ModelCIError):
    """Triton answered an inference with an error (the deployer's confirmation and probes)."""

    reason = "triton_infer_failed"
