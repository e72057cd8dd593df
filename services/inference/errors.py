"""Errors of the inference service, each knowing whether a retry can help.

The Triton adapter maps every client exception to one of these, so the pipeline branches on
the class alone: an outage is retried for ever, a rejection is isolated and dead-lettered, an
unknown model is dead-lettered at once.
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


class UnknownModel(ModelCIError):
    """Triton has no such model (or no such version of it): the request can never succeed."""

    reason = "unknown_model"
    http_status = 404


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
