"""The house rules of the import graph: services meet only through Kafka and `services.common`.

A service (a folder under ``services/`` other than the command line and the demo, which compose
them) imports nothing from another service, from ``infra`` (the local stack) or from
``benchmarks``; `services.common` imports no service. Read from the source (every ``import``
statement, lazy ones inside functions included), so an arrow added anywhere fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSERS = {"cli", "demo"}
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "__init__.py").exists() and p.name not in COMPOSERS)


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _arrows(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(REPO)): _imports(p) for p in sorted((REPO / "services" / package).rglob("*.py"))}


def _owner(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_itself_common_and_libraries(service):
    allowed = {f"services.{service}", "services.common", "strategies", "schemas"}
    project = {"services", "infra", "benchmarks", "strategies", "schemas", "tests"}
    bad = {
        f"{path} imports {module}"
        for path, modules in _arrows(service).items()
        for module in modules
        if module.split(".")[0] in project and _owner(module) not in allowed
    }
    assert not bad, sorted(bad)


def test_every_service_folder_is_checked():
    assert {"common", "console", "deployer", "drift", "inference", "trainer"} <= set(SERVICES)
