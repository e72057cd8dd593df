"""Helpers shared by the deployer tests: candidates from artifacts, polling for conditions."""

from __future__ import annotations

from services.common.artifacts import sha256_of
from services.common.events import Candidate, OffsetRange
from services.common.registry import VersionRecord, VersionStatus


def candidate(env, artifact: bytes | None, *, ranges=((0, 3, 5),), sha256: str | None = None, uri: str | None = None,
              base_version: int = 1) -> Candidate:
    """Stores ``artifact`` like the trainer does and writes the candidate version record."""
    if artifact is not None:
        uri, digest = env.store.put(artifact)
        sha256 = sha256 or digest
    version = env.registry.next_version(env.name)
    sample_ranges = [OffsetRange(p, s, e) for p, s, e in ranges]
    env.registry.put_version(VersionRecord(
        model=env.name, version=version, status=VersionStatus.CANDIDATE, artifact_uri=uri, artifact_sha256=sha256,
        base_version=base_version, strategy="replay", sample_ranges=[r.to_record() for r in sample_ranges]))
    return Candidate(update_id=f"u{version}", model=env.name, outcome="succeeded", base_version=base_version,
                     strategy="replay", code_version="test", sample_ranges=sample_ranges, version=version,
                     artifact_uri=uri, artifact_sha256=sha256)


def fake_sha(data: bytes) -> str:
    return sha256_of(data + b"tampered")
