"""An embedded stack per test, on private ports and a private run folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.embedded import EmbeddedStack
from infra.local.settings import InfraSettings
from tests.fixtures.infra import private_infra_settings


@pytest.fixture
def stack_settings(tmp_path: Path) -> InfraSettings:
    return private_infra_settings(tmp_path / "run")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No MODELCI_* address from the caller's shell leaks into the stack under test."""
    import os

    for key in list(os.environ):
        if key.startswith("MODELCI_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def stopped_after(stack_settings: InfraSettings) -> Iterator[list[EmbeddedStack]]:
    stacks: list[EmbeddedStack] = []
    yield stacks
    for stack in stacks:
        stack.down()
