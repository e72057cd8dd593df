"""Where strategies are found by name: built-ins, installed plug-ins, and dotted paths.

A strategy is named in an update request or a model's policy. Three ways to provide one:

1. Built-in: a class decorated with `register` inside this package.
2. Installed plug-in: an entry point in the group ``modelci.strategies`` of any installed
   distribution, e.g. in its ``pyproject.toml``::

       [project.entry-points."modelci.strategies"]
       my-replay = "my_package.cl:MyReplay"

3. Dotted path, for prototyping without packaging: ``"my_package.cl:MyReplay"``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TypeVar

from strategies.base import CLStrategy
from strategies.errors import UnknownStrategy

ENTRY_POINT_GROUP = "modelci.strategies"
DEFAULT_STRATEGY = "replay"
"""What a model updates with when its policy names no strategy."""
ORACLE_STRATEGY = "joint"
"""The upper bound in benchmarks: retrains on everything seen so far."""

_REGISTRY: dict[str, type[CLStrategy]] = {}

S = TypeVar("S", bound=type[CLStrategy])


def register(cls: S) -> S:
    """Class decorator adding a strategy to the registry under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, CLStrategy)):
        raise TypeError(f"{cls!r} is not a CLStrategy subclass")
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty `name`")
    known = _REGISTRY.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"strategy name {cls.name!r} is already taken by {known.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    importlib.import_module("strategies.builtin")


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every built-in and installed strategy, sorted."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_strategy(name: str) -> type[CLStrategy]:
    """The strategy class for a registry name, an entry point, or ``module:Class``."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    ep = _entry_points().get(name)
    if ep is not None:
        return _checked(name, lambda: ep.load())  # type: ignore[attr-defined]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return _checked(name, lambda: getattr(importlib.import_module(module_name), attr))
    raise UnknownStrategy(name, available())


def _checked(name: str, load: object) -> type[CLStrategy]:
    try:
        cls = load()  # type: ignore[operator]
    except (ImportError, AttributeError, ValueError) as exc:
        raise UnknownStrategy(name, available(), f"cannot import: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, CLStrategy)):
        raise UnknownStrategy(name, available(), "not a CLStrategy subclass")
    return cls
