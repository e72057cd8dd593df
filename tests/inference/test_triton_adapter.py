"""How the Triton adapter reads client errors and model descriptions (no server needed)."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from services.common.triton_errors import ModelMissing, TritonInternal, TritonRejected, TritonUnavailable
from services.inference.triton import classify, model_info


@pytest.mark.parametrize(
    "exc, expected",
    [
        (InferenceServerException("unexpected shape", status="400"), TritonRejected),
        (InferenceServerException("bad input", status="StatusCode.INVALID_ARGUMENT"), TritonRejected),
        (InferenceServerException("unknown model", status="404"), ModelMissing),
        (InferenceServerException("unknown model", status="StatusCode.NOT_FOUND"), ModelMissing),
        (InferenceServerException("model failed", status="500"), TritonInternal),
        (InferenceServerException("model failed", status="StatusCode.INTERNAL"), TritonInternal),
        (InferenceServerException("server not ready", status="StatusCode.UNAVAILABLE"), TritonUnavailable),
        (InferenceServerException("deadline", status="StatusCode.DEADLINE_EXCEEDED"), TritonUnavailable),
        (InferenceServerException("overloaded", status="503"), TritonUnavailable),
        (InferenceServerException("throttled", status="429"), TritonUnavailable),
        (InferenceServerException("no status"), TritonUnavailable),
        (ConnectionRefusedError(111, "Connection refused"), TritonUnavailable),
        (TimeoutError("timed out"), TritonUnavailable),
        (ValueError("cannot reshape"), TritonInternal),
    ],
)
def test_client_errors_map_to_what_the_pipeline_does_with_them(exc, expected):
    assert type(classify(exc)) is expected


def test_model_info_from_http_and_grpc_json():
    http_meta = {"inputs": [{"name": "INPUT__0", "datatype": "FP32", "shape": [-1, 8]}], "outputs": [{"name": "OUTPUT__0", "datatype": "FP32", "shape": [-1, 3]}]}
    info = model_info("mlp", http_meta, {"max_batch_size": 256})
    assert (info.dims, info.max_batch_size, info.datatype, info.input_name, info.output_name) == ((8,), 256, "FP32", "INPUT__0", "OUTPUT__0")
    grpc_meta = {"inputs": [{"name": "x", "datatype": "FP16", "shape": ["3", "4"]}], "outputs": [{"name": "y", "datatype": "FP32", "shape": ["2"]}]}
    info = model_info("plain", grpc_meta, {"config": {"name": "plain"}})  # max_batch_size 0 is left out
    assert (info.dims, info.max_batch_size, info.datatype) == ((3, 4), 0, "FP16")
