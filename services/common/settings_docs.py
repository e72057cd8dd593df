"""Markdown documentation of every settings class, generated from the classes themselves."""

from __future__ import annotations

import importlib

from pydantic import SecretStr
from pydantic_settings import BaseSettings

# module:Class of every settings block, in the order the README shows them.
SETTINGS_CLASSES = [
    "services.common.settings:KafkaSettings",
    "services.common.settings:RedisSettings",
    "services.common.settings:TritonSettings",
    "services.common.settings:ObservabilitySettings",
    "infra.local.settings:InfraSettings",
    "services.deployer.settings:DeployerSettings",
    "services.console.settings:ConsoleSettings",
    "services.trainer.settings:TrainerSettings",
    "services.trainer.settings:InterferenceSettings",
    "services.inference.settings:InferenceSettings",
    "services.drift.settings:DriftSettings",
]


def _load(path: str) -> type[BaseSettings]:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _default(value: object) -> str:
    if isinstance(value, SecretStr):
        return "(secret)"
    if value is None or value == "":
        return "—"
    return f"`{value}`"


def settings_markdown() -> str:
    lines: list[str] = []
    for path in SETTINGS_CLASSES:
        cls = _load(path)
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


def readme_with_settings(readme: str) -> str:
    """The README text with its settings section regenerated from the classes."""
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README has no {BEGIN} … {END} section")
    return f"{head}{BEGIN}\n{settings_markdown()}{END}{tail}"
