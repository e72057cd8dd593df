"""Where a model's strategy state lives between updates and across trainer restarts.

The state (replay memory, EWC/SI statistics, optimizer state) is the strategy's own
``state_dict``, saved as bytes into the artifact store; a Redis hash per model points at the
latest blob per strategy. Loading uses ``torch.load(weights_only=True)``: only tensors and
plain containers, so a tampered blob cannot run code.
"""

from __future__ import annotations

import json

from services.common.artifacts import ArtifactError, ArtifactStore
from services.trainer.weights import dump_state, load_state


class StrategyStateStore:
    def __init__(self, client, store: ArtifactStore, prefix: str = "modelci:") -> None:
        self.r = client
        self.store = store
        self.prefix = prefix

    def _key(self, model: str) -> str:
        return f"{self.prefix}trainer:state:{model}"

    def save(self, model: str, strategy: str, state: dict, version: int) -> str:
        uri, sha = self.store.put(dump_state(state), suffix=".state.pt")
        self.r.hset(self._key(model), strategy, json.dumps({"uri": uri, "sha256": sha, "version": version}))
        return uri

    def pointer(self, model: str, strategy: str) -> dict | None:
        raw = self.r.hget(self._key(model), strategy)
        return json.loads(raw) if raw else None

    def load(self, model: str, strategy: str) -> tuple[dict, int] | None:
        """(state, version it was saved with) or None when the model never trained with it."""
        ptr = self.pointer(model, strategy)
        if ptr is None:
            return None
        try:
            return load_state(self.store.get(ptr["uri"], ptr["sha256"])), int(ptr["version"])
        except (ArtifactError, RuntimeError, EOFError):
            return None  # a lost or corrupt blob: start the strategy fresh rather than fail every update
