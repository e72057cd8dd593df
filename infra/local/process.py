"""Start, watch and stop one local server process by PID.

Processes start in their own session so that stopping the group also stops children (Triton's
backend stubs); the PID file records the group leader. Readiness is polled with a deadline,
never slept for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from services.common.errors import InfraError, PortInUseError


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port that was free a moment ago (for tests that must not collide with a running stack)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_free(ports: dict[str, int]) -> None:
    for what, port in ports.items():
        if port_in_use(port):
            raise PortInUseError(
                f"port {port} for {what} is already in use: stop what holds it "
                f"(`modelci infra down`, or `ss -ltnp | grep {port}`) or set another port"
            )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # A zombie has exited; it only waits for its parent to reap it. But the leader of a
        # thread group also shows Z once its main thread returned while other threads still
        # run (a consumer thread closing): that process has not exited yet.
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return _threads_left(pid)
    return True


def _threads_left(pid: int) -> bool:
    """Whether threads other than the (exited) main thread of ``pid`` still run."""
    try:
        return any(int(tid) != pid for tid in os.listdir(f"/proc/{pid}/task"))
    except (OSError, ValueError):
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.05)
    if pid_alive(pid):
        raise InfraError(f"process {pid} survived SIGKILL")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and (fields[0] != "Z" or _threads_left(int(entry.name))):
                return True
    return False


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] | None = None) -> None:
    """Polls ``check`` until it is true; fails early when the process died."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if alive is not None and not alive():
            raise InfraError(f"{what} exited during start-up")
        if time.monotonic() > deadline:
            raise InfraError(f"{what} not healthy after {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
