"""A steady request load with delayed feedback, on whichever concept the scenario says."""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from dataclasses import dataclass

import numpy as np

from services.common.client import ModelCIClient
from services.demo.model import stream_datatype
from strategies.streams import DriftStream


SCORED_FRACTION = 0.2
"""Share of inputs, chosen by their content, whose labels are never sent: the demo's accuracy
is scored on these alone, so no scored input ever reached the trainer as feedback."""


def scored(x: np.ndarray, fraction: float = SCORED_FRACTION) -> bool:
    """Whether an input belongs to the scored split: a hash of its bytes, so the same input
    (the same image drawn again) always falls on the same side, whatever its request id."""
    digest = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


@dataclass
class Sent:
    label: int
    concept: int
    phase: str
    sent_at: float
    scored: bool = False
    """Its label was withheld from ModelCI-e (it counts in the accuracy figures)."""


class Traffic(threading.Thread):
    """Publishes ``rate`` requests per second; each one's label follows ``delay_s`` later."""

    def __init__(self, client: ModelCIClient, model: str, stream: DriftStream, rate: float, delay_s: float, seed: int) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.client, self.model, self.stream = client, model, stream
        self.rate, self.delay_s = rate, delay_s
        self.rng = np.random.default_rng(seed)
        self.sent: dict[str, Sent] = {}
        self.concept, self.phase = 0, "before"
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._pool: tuple[np.ndarray, np.ndarray] | None = None
        self._pool_concept = -1
        self._pool_pos = 0
        self.error: BaseException | None = None

    def switch(self, concept: int, phase: str) -> None:
        with self._lock:
            self.concept, self.phase = concept, phase

    def stop(self) -> None:
        self._halt.set()

    def recent(self, n: int) -> list[tuple[str, Sent]]:
        """The last ``n`` requests sent, safe to call while traffic flows."""
        with self._lock:
            return list(self.sent.items())[-n:]

    def _draw(self, concept: int) -> tuple[np.ndarray, int]:
        if self._pool is None or self._pool_concept != concept or self._pool_pos >= len(self._pool[1]):
            self._pool = self.stream.sample(concept, 2000, self.rng)
            self._pool_concept, self._pool_pos = concept, 0
        x, y = self._pool[0][self._pool_pos], int(self._pool[1][self._pool_pos])
        self._pool_pos += 1
        return np.asarray(x).reshape(-1), y

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced by the scenario, never swallowed
            self.error = exc

    def _loop(self) -> None:
        pending: list[tuple[float, str, int]] = []
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._halt.is_set():
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, request_id, label = heapq.heappop(pending)
                self.client.feedback(self.model, request_id, label)
            if now >= next_at:
                with self._lock:
                    concept, phase = self.concept, self.phase
                x, y = self._draw(concept)
                req = self.client.request(self.model, x, shape=self.stream.input_shape, datatype=stream_datatype(self.stream), key=None)
                held_out = scored(x)
                with self._lock:
                    self.sent[req.request_id] = Sent(y, concept, phase, time.time(), held_out)
                if not held_out:
                    heapq.heappush(pending, (now + self.delay_s, req.request_id, y))
                next_at += interval
                continue
            wait = min(next_at, pending[0][0] if pending else next_at) - time.monotonic()
            if wait > 0:
                self._halt.wait(min(wait, 0.01))
        for _, request_id, label in pending:
            self.client.feedback(self.model, request_id, label)
        self.client.flush()
