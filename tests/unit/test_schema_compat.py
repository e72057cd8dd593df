"""`modelci schemas check`: what counts as a backward-compatible change, and the CLI's verdict."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from schemas import RELEASED_DIR, SCHEMA_DIR
from services.cli.main import app
from services.common.schema_compat import backward_problems, check_release

BASE = {
    "type": "record",
    "name": "E",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}


def changed(**edits):
    schema = json.loads(json.dumps(BASE))
    for name, new in edits.items():
        for i, field in enumerate(schema["fields"]):
            if field["name"] == name:
                if new is None:
                    del schema["fields"][i]
                else:
                    schema["fields"][i] = new
                break
        else:
            schema["fields"].append(new)
    return schema


@pytest.mark.parametrize(
    "new",
    [
        changed(extra={"name": "extra", "type": "long", "default": 0}),
        changed(n={"name": "n", "type": "long"}),
        changed(n={"name": "n", "type": ["null", "int"]}),
        changed(tags=None),
        changed(kind={"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}}),
        changed(n={"name": "count", "type": "int", "aliases": ["n"]}),
    ],
    ids=["field-with-default", "int-to-long", "into-union", "drop-field", "add-enum-symbol", "rename-with-alias"],
)
def test_compatible_changes(new):
    assert backward_problems(new, BASE) == []


@pytest.mark.parametrize(
    ("new", "fragment"),
    [
        (changed(extra={"name": "extra", "type": "long"}), "new field without a default"),
        (changed(n={"name": "n", "type": "string"}), "cannot be read as string"),
        (changed(id={"name": "id", "type": "int"}), "cannot be read as int"),
        (changed(kind={"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A"]}}), "removed without a default"),
        (changed(tags={"name": "tags", "type": {"type": "array", "items": "int"}}), "tags[]"),
        ({**BASE, "name": "Other"}, "renamed"),
    ],
    ids=["field-without-default", "int-to-string", "string-to-int", "drop-enum-symbol", "array-items", "rename-record"],
)
def test_incompatible_changes_are_named(new, fragment):
    problems = backward_problems(new, BASE)
    assert problems and any(fragment in p for p in problems), problems


def test_repository_schemas_pass_the_cli_check():
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "backward compatible" in result.output


def test_breaking_change_fails_with_a_clear_message(tmp_path):
    current, released = tmp_path / "schemas", tmp_path / "released"
    shutil.copytree(SCHEMA_DIR, current, ignore=shutil.ignore_patterns("released", "__pycache__", "*.py"))
    shutil.copytree(RELEASED_DIR, released)
    schema = json.loads((current / "feedback.avsc").read_text())
    schema["fields"].append({"name": "tenant", "type": "string", "doc": "no default: breaks old data"})
    (current / "feedback.avsc").write_text(json.dumps(schema))
    problems = check_release(current, released)
    assert any("feedback.avsc" in p and "tenant" in p and "without a default" in p for p in problems)

    (current / "drift_event.avsc").unlink()
    assert any("drift_event.avsc" in p and "removed" in p for p in check_release(current, released))


def test_unparsable_schema_is_reported(tmp_path):
    current = tmp_path / "schemas"
    current.mkdir()
    (current / "broken.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}')
    problems = check_release(current, tmp_path / "none")
    assert problems and "broken.avsc" in problems[0]
