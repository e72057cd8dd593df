"""Where model artifacts live, behind one small interface.

Artifacts are addressed by content: the SHA-256 of the bytes is part of the URI, so a file can
never be swapped under a version without the hash check failing, and storing the same bytes
twice is free. The file store keeps them in a folder (a volume shared by trainer and deployer);
an object store would implement the same two methods.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from services.common.errors import ModelCIError


class ArtifactError(ModelCIError):
    """An artifact that is missing or does not match its hash."""

    reason = "artifact_invalid"


class ArtifactStore(Protocol):
    def put(self, data: bytes, suffix: str = ".pt") -> tuple[str, str]:
        """Stores bytes; returns (uri, sha256)."""

    def get(self, uri: str, sha256: str | None = None) -> bytes:
        """Reads bytes back; raises ArtifactError when missing or when the hash differs."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileArtifactStore:
    """Content-addressed files under one root folder: ``file://<root>/<sha[:2]>/<sha><suffix>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def put(self, data: bytes, suffix: str = ".pt") -> tuple[str, str]:
        digest = sha256_of(data)
        path = self.root / digest[:2] / f"{digest}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        return path.as_uri(), digest

    def get(self, uri: str, sha256: str | None = None) -> bytes:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            raise ArtifactError(f"unsupported artifact URI scheme in {uri!r}")
        path = Path(parsed.path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"artifact {uri} cannot be read: {exc.strerror}") from exc
        if sha256 is not None and sha256_of(data) != sha256:
            raise ArtifactError(f"artifact {uri} does not match its hash {sha256[:12]}…")
        return data
