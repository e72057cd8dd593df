"""One micro-batch through Triton: group, validate, infer with retries, isolate bad inputs.

Rules, in the order they apply to a group of requests (same model, pinned version and shape):

- Triton down (refused, timeout, 503) or the model not loaded: wait with capped exponential
  backoff and try again, for ever; no request is dropped or skipped. Only a stop request
  (``abort``) ends the wait, and then the group is *abandoned*: it gets no output, so its
  offsets are never committed and it is redelivered.
- A model Triton does not have (or has in its repository but has not loaded for longer than
  the grace period): every request of the group is rejected as ``unknown_model``.
- A request whose shape or datatype does not fit the model: rejected before any call.
- Triton rejects a call (400) or fails it (500, after a few retries): the group is bisected
  until the requests that fail on their own are found; only those are rejected
  (``triton_rejected``), the others still get predictions.

The pipeline knows nothing of Kafka: the worker turns its `BatchOutcome` into records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np
import structlog

from services.common.logs import model_var, version_var
from services.inference import core
from services.inference.core import Backoff, BatchOutcome, ModelInfo, Pending, Rejection
from services.common.errors import UnknownModel
from services.common.triton_errors import (
    ModelMissing,
    ModelNotReady,
    TritonInternal,
    TritonRejected,
    TritonUnavailable,
)
from services.inference.metrics import InferenceMetrics

_log = structlog.get_logger("modelci.inference.pipeline")

STALE_AFTER_S = 1.0
"""Metadata older than this is fetched again before a request is rejected on it (so a model whose
input just changed is not held against its callers, yet a stream of bad requests does not
cost a metadata call per batch)."""


class Gateway(Protocol):
    """What the pipeline needs from Triton (`services.inference.triton.TritonGateway`)."""

    def model_info(self, model: str, version: int | None = None, *, max_age_s: float | None = None) -> ModelInfo: ...

    def infer(self, info: ModelInfo, version: int | None, batch: np.ndarray) -> tuple[np.ndarray, int]: ...


class _Abandon(Exception):
    """Internal: the stop request ended a wait."""


class InferencePipeline:
    def __init__(
        self,
        gateway: Gateway,
        *,
        backoff: Backoff | None = None,
        internal_error_retries: int = 2,
        model_not_ready_grace_s: float = 120.0,
        concurrency: int = 4,
        abort: threading.Event | None = None,
        metrics: InferenceMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = 0.5,
    ) -> None:
        self.gateway = gateway
        self.backoff = backoff or Backoff()
        self.internal_error_retries = internal_error_retries
        self.model_not_ready_grace_s = model_not_ready_grace_s
        self.abort = abort or threading.Event()
        self.metrics = metrics
        self.tick_s = tick_s
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="triton")
        self._not_ready_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- one micro-batch ----------------------------------------------------------------------
    def process(self, batch: list[Pending[Any]], keepalive: Callable[[], None] | None = None) -> BatchOutcome[Any]:
        """Runs a micro-batch; ``keepalive`` is called every ``tick_s`` while groups are still
        waiting (the worker keeps its consumer-group membership alive there)."""
        outcome: BatchOutcome[Any] = BatchOutcome()
        valid = []
        for item in batch:
            rejection = core.check_request(item.request)
            if rejection is None:
                valid.append(item)
            else:
                outcome.reject([item], rejection)
        futures: list[Future] = [self._pool.submit(self._run_group, items) for items in core.group(valid).values()]
        while wait(futures, timeout=self.tick_s).not_done:
            if keepalive is not None:
                keepalive()
        for future in futures:
            outcome.extend(future.result())  # re-raises a bug in a group; nothing is then committed
        return outcome

    # --- one group (same model, version, shape) -----------------------------------------------
    def _run_group(self, items: list[Pending[Any]]) -> BatchOutcome[Any]:
        req = items[0].request
        tokens = (model_var.set(req.model), version_var.set(req.version))  # log context of this group
        outcome: BatchOutcome[Any] = BatchOutcome()
        try:
            self._answer_group(items, outcome)
        except _Abandon:
            done = {id(r.item) for r in outcome.rejected}
            done |= {id(it) for ans in outcome.answered for it in ans.items}
            outcome.abandoned = [it for it in items if id(it) not in done]
        finally:
            model_var.reset(tokens[0])
            version_var.reset(tokens[1])
        return outcome

    def _answer_group(self, items: list[Pending[Any]], outcome: BatchOutcome[Any]) -> None:
        req = items[0].request
        info = self._lookup(req.model, req.version)
        if isinstance(info, Rejection):
            outcome.reject(items, info)
            return
        valid, invalid = self._validate(items, info)
        if invalid:  # cached metadata may be stale: decide on recent metadata before rejecting
            info = self._lookup(req.model, req.version, max_age_s=STALE_AFTER_S)
            if isinstance(info, Rejection):
                outcome.reject(items, info)
                return
            valid, invalid = self._validate(items, info)
        outcome.rejected += invalid
        for chunk in core.chunks(valid, info.max_batch_size):
            self._infer(info, req.version, chunk, outcome, self.internal_error_retries)

    @staticmethod
    def _validate(items: list[Pending[Any]], info: ModelInfo) -> tuple[list[Pending[Any]], list[core.Rejected[Any]]]:
        valid, invalid = [], []
        for item in items:
            rejection = core.check_against_model(item.request, info)
            if rejection is None:
                valid.append(item)
            else:
                invalid.append(core.Rejected(item, rejection))
        return valid, invalid

    def _lookup(self, model: str, version: int | None, max_age_s: float | None = None) -> ModelInfo | Rejection:
        attempt = 0
        while True:
            try:
                info = self.gateway.model_info(model, version, max_age_s=max_age_s)
                with self._lock:
                    self._not_ready_since.pop(model, None)
                return info
            except UnknownModel as exc:
                return Rejection(core.UNKNOWN_MODEL, str(exc))
            except ModelNotReady as exc:
                with self._lock:
                    since = self._not_ready_since.setdefault(model, self._clock())
                if self._clock() - since > self.model_not_ready_grace_s:
                    detail = f"not loaded for over {self.model_not_ready_grace_s:.0f} s: {exc}"
                    return Rejection(core.UNKNOWN_MODEL, detail)
                self._wait(attempt, "model_not_ready", exc)
            except TritonUnavailable as exc:
                self._wait(attempt, "unavailable", exc)
            attempt += 1
            max_age_s = 0.0

    def _infer(
        self,
        info: ModelInfo,
        version: int | None,
        items: list[Pending[Any]],
        outcome: BatchOutcome[Any],
        internal_retries: int,
    ) -> None:
        batch = core.input_array(items)
        attempt = internal = 0  # waits so far; of those, after a 500
        while True:
            started = self._clock()
            try:
                scores, answered = self.gateway.infer(info, version, batch)
            except TritonUnavailable as exc:
                self._observe(info.name, "unavailable", started)
                self._wait(attempt, "unavailable", exc)
            except ModelMissing as exc:  # unloaded since the lookup: is it gone, or coming back?
                self._observe(info.name, "missing", started)
                verdict = self._lookup(info.name, version, max_age_s=0.0)
                if isinstance(verdict, Rejection):
                    outcome.reject(items, verdict)
                    return
                info = verdict
                self._wait(attempt, "model_missing", exc)
            except TritonRejected as exc:  # TritonInternal included
                self._observe(info.name, "rejected", started)
                if isinstance(exc, TritonInternal) and internal < internal_retries:
                    internal += 1
                    self._wait(attempt, "internal", exc)
                else:
                    self._bisect(info, version, items, outcome, exc)
                    return
            else:
                self._observe(info.name, "ok", started, len(items), answered)
                outcome.answered.append(core.Answered(info.name, answered, items, core.predictions(items, scores)))
                return
            attempt += 1

    def _bisect(
        self,
        info: ModelInfo,
        version: int | None,
        items: list[Pending[Any]],
        outcome: BatchOutcome[Any],
        exc: TritonRejected,
    ) -> None:
        if len(items) == 1:
            outcome.reject(items, Rejection(core.TRITON_REJECTED, str(exc)))
            return
        mid = len(items) // 2
        # Halves get no retries of their own for 500s: the whole batch has been retried already.
        self._infer(info, version, items[:mid], outcome, 0)
        self._infer(info, version, items[mid:], outcome, 0)

    # --- waiting and metrics ------------------------------------------------------------------
    def _wait(self, attempt: int, kind: str, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.retries.labels(kind).inc()
        delay = self.backoff.delay(attempt)
        if attempt == 0 or attempt % 10 == 0:
            _log.warning("triton_retry", kind=kind, attempt=attempt, delay_s=round(delay, 3), error=str(exc)[:300])
        if self.abort.wait(delay):
            raise _Abandon()

    def _observe(self, model: str, outcome: str, started: float, size: int | None = None, version: int | None = None) -> None:
        """``version`` is the one Triton says answered: never the requested one, so the label only
        takes values Triton has loaded; a failed call has none (``""``)."""
        if self.metrics is None:
            return
        label = "" if version is None else self.metrics.version_label(model, version)
        self.metrics.triton_latency.labels(model, label, outcome).observe(self._clock() - started)
        if size is not None:
            self.metrics.triton_batch_size.labels(model).observe(size)
