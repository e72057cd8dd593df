"""The Triton client adapter: model metadata (cached) and batched inference.

Every tritonclient exception becomes one of the service's errors (`classify`), so callers
never look at status strings. Clients are per thread (the HTTP client is not thread-safe), and
the gRPC channel reconnects quickly after an outage instead of gRPC's default backoff of up to
two minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from services.common.errors import ModelCIError
from services.common.settings import TritonSettings
from services.inference.core import ModelInfo
from services.common.errors import UnknownModel
from services.common.triton_errors import (
    ModelMissing,
    ModelNotReady,
    TritonInternal,
    TritonRejected,
    TritonUnavailable,
)

_NOT_FOUND = {"404", "NOT_FOUND"}
_INTERNAL = {"500", "INTERNAL", "UNKNOWN", "DATA_LOSS"}
_REJECTED = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED", "ALREADY_EXISTS"}
# 4xx that say nothing about the input: auth, throttling, timeouts. Retried like an outage.
_NOT_THE_INPUT = {"401", "403", "408", "429"}

try:  # the HTTP client's timeouts are gevent's, which do not derive from Exception
    from gevent import Timeout as _GeventTimeout
except ImportError:  # pragma: no cover - gevent comes with tritonclient[http]
    _GeventTimeout = TimeoutError


def classify(exc: BaseException) -> ModelCIError:
    """The service error a tritonclient exception stands for."""
    if isinstance(exc, ModelCIError):
        return exc
    if isinstance(exc, InferenceServerException):
        status = (exc.status() or "").removeprefix("StatusCode.")
        text = exc.message() or str(exc)
        if status in _NOT_FOUND:
            return ModelMissing(text)
        if status in _INTERNAL:
            return TritonInternal(text)
        if status in _REJECTED or (status.isdigit() and 400 <= int(status) < 500 and status not in _NOT_THE_INPUT):
            return TritonRejected(text)
        return TritonUnavailable(f"{status or 'no status'}: {text}")
    if isinstance(exc, (OSError, TimeoutError, _GeventTimeout)):  # refused, reset, timed out
        return TritonUnavailable(f"{type(exc).__name__}: {exc}")
    return TritonInternal(f"{type(exc).__name__}: {exc}")


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in values)  # gRPC's JSON renders int64 as strings


def model_info(name: str, metadata: dict[str, Any], config: dict[str, Any]) -> ModelInfo:
    """`ModelInfo` from Triton's model metadata and model config (HTTP or gRPC JSON)."""
    config = config.get("config", config)
    max_batch = int(config.get("max_batch_size", config.get("maxBatchSize", 0)) or 0)
    inp, out = metadata["inputs"][0], metadata["outputs"][0]
    dims = _ints(inp["shape"])
    if max_batch > 0:
        dims = dims[1:]  # metadata shapes include the batch dimension of batching models
    return ModelInfo(
        name=name,
        datatype=str(inp["datatype"]),
        dims=dims,
        max_batch_size=max_batch,
        input_name=str(inp["name"]),
        output_name=str(out["name"]),
    )


class TritonGateway:
    """Metadata and inference against one Triton server, safe to call from several threads."""

    def __init__(
        self,
        triton: TritonSettings,
        *,
        protocol: str = "grpc",
        timeout_s: float = 10.0,
        metadata_ttl_s: float = 30.0,
        reconnect_max_ms: float = 5000.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError(f"unknown Triton protocol {protocol!r}")
        self.protocol = protocol
        self.url = triton.grpc_url if protocol == "grpc" else triton.http_url
        self.timeout_s = timeout_s
        self.metadata_ttl_s = metadata_ttl_s
        self.reconnect_max_ms = int(reconnect_max_ms)
        self._clock = clock
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int | None], tuple[float, ModelInfo]] = {}

    # --- clients --------------------------------------------------------------------------------
    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "grpc":
                import tritonclient.grpc as grpcclient

                client = grpcclient.InferenceServerClient(
                    self.url,
                    channel_args=[
                        ("grpc.max_send_message_length", 2**31 - 1),
                        ("grpc.max_receive_message_length", 2**31 - 1),
                        ("grpc.initial_reconnect_backoff_ms", 100),
                        ("grpc.min_reconnect_backoff_ms", 100),
                        ("grpc.max_reconnect_backoff_ms", max(self.reconnect_max_ms, 100)),
                    ],
                )
            else:
                import tritonclient.http as httpclient

                client = httpclient.InferenceServerClient(
                    self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
                )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._client()
        if self.protocol == "grpc":
            kwargs.setdefault("client_timeout", self.timeout_s)
            if method != "infer":
                kwargs["as_json"] = True
        try:
            return getattr(client, method)(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise classify(exc) from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort
                pass

    # --- metadata -------------------------------------------------------------------------------
    def model_info(self, model: str, version: int | None = None, *, max_age_s: float | None = None) -> ModelInfo:
        """The model's input description, cached for ``metadata_ttl_s`` (or ``max_age_s``).

        Raises `UnknownModel` when Triton has no such model or version, `ModelNotReady` when the
        model is in the repository but not loaded, `TritonUnavailable` when Triton is down.
        """
        key = (model, version)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        max_age = self.metadata_ttl_s if max_age_s is None else max_age_s
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
        v = "" if version is None else str(version)
        try:
            metadata = self._call("get_model_metadata", model, v)
            config = self._call("get_model_config", model, v)
        except ModelMissing as exc:
            raise self._why_missing(model, version, exc) from exc
        info = model_info(model, metadata, config)
        with self._lock:
            self._cache[key] = (now, info)
        return info

    def _why_missing(self, model: str, version: int | None, exc: ModelMissing) -> ModelCIError:
        if version is not None:
            try:
                self._call("get_model_metadata", model, "")
                return UnknownModel(f"model {model!r} has no version {version} loaded: {exc}")
            except ModelMissing:
                pass
        index = self._call("get_model_repository_index")
        entries = index.get("models", []) if isinstance(index, dict) else index
        if any(entry.get("name") == model for entry in entries):
            return ModelNotReady(f"model {model!r} is in the repository but not loaded: {exc}")
        return UnknownModel(f"Triton has no model {model!r}: {exc}")

    def forget(self, model: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == model]:
                del self._cache[key]

    # --- inference ------------------------------------------------------------------------------
    def infer(self, info: ModelInfo, version: int | None, batch: np.ndarray) -> tuple[np.ndarray, int]:
        """Scores ``[n, classes]`` for the batch ``[n, *dims]`` and the version that answered.

        The batch is sent in the model's input datatype (requests declared the same one)."""
        if self.protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
        n = batch.shape[0]
        tensor = batch if info.max_batch_size > 0 else batch[0]  # non-batching models: one row
        tensor = np.ascontiguousarray(tensor, dtype=triton_to_np_dtype(info.datatype))
        inp = mod.InferInput(info.input_name, list(tensor.shape), info.datatype)
        out_kwargs: dict[str, Any] = {}
        if self.protocol == "http":
            inp.set_data_from_numpy(tensor, binary_data=True)
            out_kwargs["binary_data"] = True
        else:
            inp.set_data_from_numpy(tensor)
        output = mod.InferRequestedOutput(info.output_name, **out_kwargs)
        v = "" if version is None else str(version)
        result = self._call("infer", info.name, [inp], model_version=v, outputs=[output])
        scores = result.as_numpy(info.output_name)
        if scores is None or scores.size == 0 or scores.size % n:
            got = None if scores is None else list(scores.shape)
            raise TritonInternal(f"{info.name} answered {n} inputs with output of shape {got}")
        response = result.get_response()
        answered = response["model_version"] if isinstance(response, dict) else response.model_version
        return scores.reshape(n, -1), int(answered)
