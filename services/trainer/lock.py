"""A per-model lock in Redis, so two trainers never update the same model at once.

SET NX PX with a random token takes it; a background thread renews it while the holder works
(so a long update keeps it, and a crashed trainer loses it after the TTL); a compare-and-delete
script releases it, so a holder whose lock expired never deletes someone else's.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


class LockTimeout(Exception):
    """The lock stayed taken for longer than the caller would wait."""


class ModelLock:
    """``with ModelLock(redis, key, ttl_ms).hold(wait_s):`` — waits, holds, renews, releases."""

    def __init__(self, client, key: str, ttl_ms: int = 30000) -> None:
        self.r = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = uuid.uuid4().hex
        self.waited_s = 0.0
        self.contended = False
        """Whether the lock was held by another when this one first asked (it then waited)."""
        self.acquired_at: float | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = threading.Event()

    def try_acquire(self) -> bool:
        return bool(self.r.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def acquire(self, wait_s: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Polls until the lock is free (backing off up to 0.5 s); raises LockTimeout after ``wait_s``."""
        start = time.monotonic()
        delay = 0.02
        while not self.try_acquire():
            self.contended = True
            if stop() or time.monotonic() - start > wait_s:
                self.waited_s = time.monotonic() - start
                raise LockTimeout(f"{self.key} still held after {self.waited_s:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        self.waited_s = time.monotonic() - start
        self.acquired_at = time.time()
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lock-renew:{self.key}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.r.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
                    self.lost.set()
                    return
            except Exception:  # Redis blip: the next round tries again before the TTL runs out
                continue

    def release(self) -> bool:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        return bool(self.r.eval(_RELEASE, 1, self.key, self.token))

    def held(self) -> bool:
        value = self.r.get(self.key)
        return value is not None and value.decode() == self.token
