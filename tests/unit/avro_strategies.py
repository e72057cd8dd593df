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


_FINITE = {
    **_PRIMITIVE,
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
}


def records(schema: Any, names: dict[str, Any] | None = None, *, json_safe: bool = False) -> st.SearchStrategy:
    """Records of ``schema``. ``json_safe`` leaves out what cannot travel as Avro's JSON
    encoding (the form records take to and from the Java interop program): infinities, and
    empty map keys (fastavro 1.13's JSON writer raises "No key was set" on them)."""
    names = {} if names is None else names
    primitive = _FINITE if json_safe else _PRIMITIVE

    def sub(part: Any) -> st.SearchStrategy:
        return records(part, names, json_safe=json_safe)

    if isinstance(schema, str):
        return primitive[schema] if schema in primitive else sub(names[schema])
    if isinstance(schema, list):
        return st.one_of([sub(branch) for branch in schema])
    kind = schema["type"]
    if kind in primitive:
        return primitive[kind]
    if kind == "array":
        return st.lists(sub(schema["items"]), max_size=5)
    if kind == "map":
        return st.dictionaries(st.text(min_size=int(json_safe), max_size=8), sub(schema["values"]), max_size=4)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "record":
        names[schema["name"]] = schema
        if "namespace" in schema:
            names[f'{schema["namespace"]}.{schema["name"]}'] = schema
        return st.fixed_dictionaries({f["name"]: sub(f["type"]) for f in schema["fields"]})
    raise NotImplementedError(kind)
