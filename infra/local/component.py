"""What every local component shares: its folder, PID file, log, start/stop and status."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local import process
from infra.local.settings import InfraSettings
from services.common.errors import InfraError


@dataclass
class ComponentStatus:
    name: str
    address: str
    version: str | None
    pid: int | None
    healthy: bool
    log: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Component:
    """One real server process. Subclasses say how to install, start and probe it."""

    name: str = "component"

    def __init__(self, settings: InfraSettings) -> None:
        self.settings = settings
        self.home = settings.run_dir.resolve() / self.name
        self._proc: subprocess.Popen | None = None

    # --- what subclasses provide -------------------------------------------------------------
    def install(self) -> None:
        """Fetch or build what the component needs; idempotent and cheap when already done."""

    def ports(self) -> dict[str, int]:
        raise NotImplementedError

    def address(self) -> str:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configs and initialise data before the first start."""

    def healthy(self) -> bool:
        raise NotImplementedError

    def version(self) -> str | None:
        return None

    # --- shared behaviour ----------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    @property
    def log_file(self) -> Path:
        return self.home / "log"

    def pid(self) -> int | None:
        pid = process.read_pid(self.pid_file)
        return pid if pid is not None and process.pid_alive(pid) else None

    def start(self) -> None:
        if self.pid() is not None:
            if self._safe_healthy():
                return
            raise InfraError(f"{self.name} has a live process ({self.pid()}) that is not healthy; run `modelci infra down`")
        process.require_free({f"{self.name} {what}": port for what, port in self.ports().items()})
        self.home.mkdir(parents=True, exist_ok=True)
        self.install()
        self.prepare()
        argv, env = self.command()
        self._proc = process.spawn(argv, log_file=self.log_file, pid_file=self.pid_file, env=env, cwd=self.home)
        try:
            process.wait_until(
                self.healthy,
                self.settings.start_timeout_s,
                f"{self.name} (log: {self.log_file})",
                alive=lambda: self._proc is not None and self._proc.poll() is None,
            )
        except InfraError:
            self.stop()
            raise

    def stop(self) -> None:
        pid = process.read_pid(self.pid_file)
        if pid is not None:
            process.stop_pid(pid)
        if self._proc is not None:
            self._proc.poll()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)

    def _safe_healthy(self) -> bool:
        try:
            return bool(self.healthy())
        except Exception:
            return False

    def status(self) -> ComponentStatus:
        pid = self.pid()
        healthy = pid is not None and self._safe_healthy()
        version = None
        if healthy:
            try:
                version = self.version()
            except Exception:
                version = None
        return ComponentStatus(self.name, self.address(), version, pid, healthy, str(self.log_file))
