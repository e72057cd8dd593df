"""Markdown documentation of settings classes, generated from the classes themselves.

The caller names the classes (the command line, which composes every service, lists them in
`services.cli.config_cmd.settings_classes`), so this shared module depends on no service."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr
from pydantic_settings import BaseSettings


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None or value == "":
        return "—"
    return f"`{value}`"


def settings_markdown(classes: Sequence[type[BaseSettings]]) -> str:
    """One table per class with an ``env_prefix``: variable, default, the field's docstring."""
    lines: list[str] = []
    for cls in classes:
        if not cls.model_config.get("env_prefix"):
            continue
        prefix = cls.model_config["env_prefix"]
        lines += [f"#### {cls.__name__}", "", (cls.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            default = field.default
            if field.default_factory is not None:
                default = field.default_factory()
                if isinstance(default, BaseSettings):  # a nested block, documented on its own
                    continue
                if isinstance(default, list):
                    default = ", ".join(getattr(d, "name", str(d)) for d in default) or None
            doc = " ".join((field.description or "").split())
            lines.append(f"| `{prefix}{name.upper()}` | {_default(default)} | {doc} |")
        lines.append("")
    return "\n".join(lines)


BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def readme_with_settings(readme: str, classes: Sequence[type[BaseSettings]]) -> str:
    """The README text with its settings section regenerated from the classes."""
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README has no {BEGIN} … {END} section")
    return f"{head}{BEGIN}\n{settings_markdown(classes)}{END}{tail}"
