"""Hypothesis strategies that generate records for any Avro schema, for round-trip tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_PRIMITIVE = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "long": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=64),
    "string": st.text(max_size=24),
}


def records(schema: Any, names: dict[str, Any] | None = None) -> st.SearchStrategy:
    names = {} if names is None else names
    if isinstance(schema, str):
        return _PRIMITIVE[schema] if schema in _PRIMITIVE else records(names[schema], names)
    if isinstance(schema, list):
        return st.one_of([records(branch, names) for branch in schema])
    kind = schema["type"]
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind]
    if kind == "array":
        return st.lists(records(schema["items"], names), max_size=5)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), records(schema["values"], names), max_size=4)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "record":
        names[schema["name"]] = schema
        if "namespace" in schema:
            names[f'{schema["namespace"]}.{schema["name"]}'] = schema
        return st.fixed_dictionaries({f["name"]: records(f["type"], names) for f in schema["fields"]})
    raise NotImplementedError(kind)
