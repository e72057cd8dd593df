"""A process whose main thread has exited while another thread still runs is alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.local.process import pid_alive, wait_until

LEADER_EXITS = (
    "import ctypes, sys, threading\n"
    "threading.Thread(target=sys.stdin.read, daemon=True).start()\n"  # lives until stdin closes
    "ctypes.CDLL(None).pthread_exit(None)\n"
)


def test_a_thread_group_whose_leader_is_a_zombie_is_still_alive():
    proc = subprocess.Popen([sys.executable, "-c", LEADER_EXITS], stdin=subprocess.PIPE)
    try:
        wait_until(lambda: Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30, "the main thread exited")
        assert pid_alive(proc.pid), "the leader shows Z, but a thread still runs: the process has not exited"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert not pid_alive(proc.pid)
