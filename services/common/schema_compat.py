"""Backward-compatibility check between two versions of an Avro schema.

"Backward compatible" here is Avro's schema-resolution rule seen from the consumer: a reader
using the *new* schema can decode every record written with the *old* one. Consumers are
upgraded before producers in a rolling deploy, so this is the property that keeps a rollout
from dead-lettering live traffic. The rules follow the Avro specification's "Schema
Resolution" section; each problem is reported with its path so a failing check says exactly
which field broke.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

Schema = Any

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _kind(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else "named"
    return schema["type"] if schema["type"] not in _PRIMITIVES else schema["type"]


def _index(schema: Schema, names: dict[str, Any]) -> None:
    """Collects named types so that references by name can be followed."""
    if isinstance(schema, list):
        for branch in schema:
            _index(branch, names)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if kind in ("record", "enum", "fixed"):
            names[schema["name"]] = schema
            if "namespace" in schema:
                names[f'{schema["namespace"]}.{schema["name"]}'] = schema
        if kind == "record":
            for field in schema["fields"]:
                _index(field["type"], names)
        elif kind == "array":
            _index(schema["items"], names)
        elif kind == "map":
            _index(schema["values"], names)


def _resolve(schema: Schema, names: dict[str, Any]) -> Schema:
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        return names.get(schema, names.get(schema.rsplit(".", 1)[-1], schema))
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        return schema["type"]
    return schema


def _matches(reader: Schema, writer: Schema, rnames: dict, wnames: dict, path: str) -> list[str]:
    reader, writer = _resolve(reader, rnames), _resolve(writer, wnames)
    rk, wk = _kind(reader), _kind(writer)
    if wk == "union":
        problems = []
        for branch in writer:
            problems += _matches(reader, branch, rnames, wnames, f"{path}|{_kind(branch)}")
        return problems
    if rk == "union":
        for branch in reader:
            if not _matches(branch, writer, rnames, wnames, path):
                return []
        return [f"{path}: writer type {wk} matches no branch of the reader's union"]
    if wk in _PRIMITIVES:
        if rk in _PROMOTIONS.get(wk, {wk}):
            return []
        return [f"{path}: writer type {wk} cannot be read as {rk}"]
    if rk != wk:
        return [f"{path}: writer type {wk} cannot be read as {rk}"]
    if rk == "array":
        return _matches(reader["items"], writer["items"], rnames, wnames, f"{path}[]")
    if rk == "map":
        return _matches(reader["values"], writer["values"], rnames, wnames, f"{path}{{}}")
    if rk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{path}: enum symbols {sorted(missing)} removed without a default"]
        return []
    if rk == "fixed":
        if reader["size"] != writer["size"]:
            return [f"{path}: fixed size changed {writer['size']} -> {reader['size']}"]
        return []
    if rk in ("record", "enum", "fixed"):
        rname, wname = reader["name"].rsplit(".", 1)[-1], writer["name"].rsplit(".", 1)[-1]
        aliases = {a.rsplit(".", 1)[-1] for a in reader.get("aliases", [])}
        if rname != wname and wname not in aliases:
            return [f"{path}: {rk} renamed {wname} -> {rname} without an alias"]
    if rk == "record":
        problems: list[str] = []
        wfields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((wfields[n] for n in names if n in wfields), None)
            fpath = f"{path}.{field['name']}"
            if source is None:
                if "default" not in field:
                    problems.append(f"{fpath}: new field without a default")
                continue
            problems += _matches(field["type"], source["type"], rnames, wnames, fpath)
        return problems
    return [f"{path}: unsupported schema type {rk}"]


def backward_problems(new: Schema, old: Schema) -> list[str]:
    """Why a reader with schema ``new`` cannot read data written with ``old``; empty if it can."""
    rnames: dict[str, Any] = {}
    wnames: dict[str, Any] = {}
    _index(new, rnames)
    _index(old, wnames)
    root = new.get("name", "record") if isinstance(new, dict) else "schema"
    return _matches(new, old, rnames, wnames, root)


def _release_key(name: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in name.lstrip("v").split("."))


def check_release(schema_dir: Path, released_dir: Path) -> list[str]:
    """Problems that keep the schemas in ``schema_dir`` from replacing the latest release.

    Every schema must parse, and every schema of the latest release under ``released_dir``
    must still exist and be readable by its current version.
    """
    import json

    from services.common.errors import SchemaError
    from services.common.serde import SchemaRegistry

    try:
        registry = SchemaRegistry(schema_dir, released_dir)
    except SchemaError as exc:
        return [str(exc)]
    releases = sorted((p for p in released_dir.glob("*") if p.is_dir()), key=lambda p: _release_key(p.name))
    if not releases:
        return []
    latest = releases[-1]
    current_by_file = {v.source.name: v for v in registry.current.values()}
    problems: list[str] = []
    for old_path in sorted(latest.glob("*.avsc")):
        current = current_by_file.get(old_path.name)
        if current is None:
            problems.append(f"{old_path.name}: released in {latest.name} but removed from {schema_dir.name}/")
            continue
        for problem in backward_problems(current.raw, json.loads(old_path.read_text())):
            problems.append(f"{old_path.name}: cannot read data written with release {latest.name}: {problem}")
    return problems
