"""The five local components as one stack: install, up, down, status.

``up`` is all or nothing: if any component fails to become healthy, the ones already started
are stopped again, so a failed start never leaves a half-started stack behind.
"""

from __future__ import annotations

from collections.abc import Iterable

from infra.local.component import Component, ComponentStatus
from infra.local.kafka import ApacheKafka
from infra.local.prometheus import Prometheus
from infra.local.redis import Redis
from infra.local.settings import InfraSettings
from infra.local.tansu import Tansu
from infra.local.triton import Triton
from services.common.errors import InfraError

COMPONENTS: dict[str, type[Component]] = {
    "kafka": ApacheKafka,
    "tansu": Tansu,
    "redis": Redis,
    "triton": Triton,
    "prometheus": Prometheus,
}


class Stack:
    def __init__(self, settings: InfraSettings | None = None, names: Iterable[str] | None = None) -> None:
        self.settings = settings or InfraSettings()
        chosen = list(names) if names else list(COMPONENTS)
        unknown = set(chosen) - set(COMPONENTS)
        if unknown:
            raise InfraError(f"unknown components {sorted(unknown)}; known: {list(COMPONENTS)}")
        self.components = [COMPONENTS[name](self.settings) for name in chosen]

    def install(self) -> None:
        for component in self.components:
            component.install()

    def up(self) -> list[ComponentStatus]:
        started: list[Component] = []
        try:
            for component in self.components:
                component.start()
                started.append(component)
        except BaseException:
            for component in reversed(started):
                component.stop()
            raise
        return self.status()

    def down(self) -> None:
        errors = []
        for component in reversed(self.components):
            try:
                component.stop()
            except InfraError as exc:
                errors.append(str(exc))
        if errors:
            raise InfraError("; ".join(errors))

    def status(self) -> list[ComponentStatus]:
        return [component.status() for component in self.components]
