"""Redis from the machine's ``redis-server`` (Debian's package), as a plain foreground process."""

from __future__ import annotations

import shutil

from infra.local.component import Component
from services.common.errors import InfraError


class Redis(Component):
    name = "redis"
    appendonly: bool = False

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            raise InfraError("redis-server not found: run `make system-deps` (Debian package redis-server)")

    def ports(self) -> dict[str, int]:
        return {"port": self.settings.redis_port}

    def address(self) -> str:
        return f"redis://127.0.0.1:{self.settings.redis_port}/0"

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        return (
            [
                "redis-server",
                "--port",
                str(self.settings.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.home),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            None,
        )

    def healthy(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.settings.redis_port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def version(self) -> str:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.settings.redis_port, socket_timeout=1)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
