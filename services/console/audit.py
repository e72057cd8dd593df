"""The audit log: who did what, when, and with what result, as a bounded Redis stream.

Every action (commands, manual updates, user and token changes, logins) is written here by the
code that performs it, after the outcome is known, so the log says whether it worked. Entries
never contain secrets: passwords and tokens are not passed in.
"""

from __future__ import annotations

import json
import time
from typing import Any


class AuditLog:
    def __init__(self, client, prefix: str, length: int = 10000) -> None:
        self.r = client
        self.key = f"{prefix}console:audit"
        self.length = length

    def record(self, actor: str, action: str, result: str, *, model: str | None = None, version: int | None = None,
               params: dict[str, Any] | None = None, event_id: str | None = None, detail: str = "") -> str:
        entry = {
            "at_ms": int(time.time() * 1000),
            "actor": actor,
            "action": action,
            "result": result,
            "model": model or "",
            "version": "" if version is None else str(version),
            "params": json.dumps(params or {}),
            "event_id": event_id or "",
            "detail": detail[:500],
        }
        return self.r.xadd(self.key, entry, maxlen=self.length, approximate=True).decode()

    def entries(self, limit: int = 100, model: str | None = None, actor: str | None = None) -> list[dict[str, Any]]:
        """Newest first, optionally for one model or one actor."""
        out = []
        for entry_id, raw in self.r.xrevrange(self.key, count=limit if not (model or actor) else max(limit * 10, 1000)):
            e = {k.decode(): v.decode() for k, v in raw.items()}
            if (model and e["model"] != model) or (actor and e["actor"] != actor):
                continue
            e["id"] = entry_id.decode()
            e["at_ms"] = int(e["at_ms"])
            e["version"] = int(e["version"]) if e["version"] else None
            e["params"] = json.loads(e["params"])
            out.append(e)
            if len(out) >= limit:
                break
        return out
