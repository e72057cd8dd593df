"""A model's declared input: how its tensors travel in events and come back as batches."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.tensors import InputError, InputSpec, datatype_of, normalize_datatype


def test_float_inputs_travel_in_features_and_integer_inputs_in_int_features():
    image = InputSpec((1, 2, 2), "fp16")
    assert image.datatype == "FP16" and image.size == 4 and image.triton_type == "TYPE_FP16"
    assert image.fields(np.arange(4, dtype=np.float16).reshape(1, 2, 2)) == ([0.0, 1.0, 2.0, 3.0], [])
    text = InputSpec([3], "INT64")
    assert text.fields([7, 0, 2**40]) == ([], [7, 0, 2**40])
    assert text.fields(np.array([1.0, 2.0, 0.0])) == ([], [1, 2, 0])  # whole floats are ids
    assert text.compute_dtype == np.int64 and image.compute_dtype == np.float32  # FP16 trains in FP32


@pytest.mark.parametrize(
    "spec, values, reason",
    [
        (InputSpec((3,), "INT64"), [0.5, 1, 2], "wrong_datatype"),
        (InputSpec((3,), "INT32"), [1, 2, float("nan")], "wrong_datatype"),
        (InputSpec((2, 2)), [1.0, 2.0, 3.0], "wrong_shape"),
    ],
)
def test_values_that_do_not_fit_the_declared_input_are_refused_with_a_reason(spec, values, reason):
    with pytest.raises(InputError) as info:
        spec.fields(values)
    assert info.value.reason == reason


def test_batches_come_back_in_the_declared_datatype_and_shape():
    text = InputSpec((3,), "INT32")
    batch = text.batch([[], []], [[1, 2, 3], [4, 5, 6]])
    assert batch.dtype == np.int32 and batch.shape == (2, 3)
    image = InputSpec((1, 2, 2))
    assert image.batch([[0.0] * 4]).shape == (1, 1, 2, 2) and image.batch([]).shape == (0, 1, 2, 2)
    ids = text.synthetic(16)
    assert ids.dtype == np.int32 and set(np.unique(ids)) <= {0, 1}  # valid in any vocabulary
    assert datatype_of(ids) == "INT32" and datatype_of(image.synthetic(1)) == "FP32"


def test_unknown_datatypes_name_the_supported_ones():
    with pytest.raises(InputError, match="FP32, FP16, INT64, INT32"):
        normalize_datatype("BF16")
    assert normalize_datatype("TYPE_INT64") == "INT64"
    assert InputSpec.of([4]) == InputSpec((4,), "FP32")
