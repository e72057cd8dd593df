"""An embedded stack per test, on private ports and a private run folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.embedded import EmbeddedStack
from infra.local.process import free_port
from infra.local.settings import InfraSettings

REPO = Path(__file__).resolve().parents[2]


def private_settings(run_dir: Path) -> InfraSettings:
    base = free_port()
    while any(not _free(base + i) for i in range(5)):
        base = free_port()
    return InfraSettings(
        run_dir=run_dir,
        tools_dir=REPO / ".modelci" / "tools",
        tansu_port=free_port(),
        redis_port=free_port(),
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
        prometheus_port=free_port(),
        prometheus_scrape_interval="1s",
        service_port_base=base,
    )


def _free(port: int) -> bool:
    from infra.local.process import port_in_use

    return not port_in_use(port)


@pytest.fixture
def stack_settings(tmp_path: Path) -> InfraSettings:
    return private_settings(tmp_path / "run")


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
