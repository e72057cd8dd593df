"""Avro serde for every event on the wire.

Encoding is Avro's *single-object encoding*: the two marker bytes ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the
schemaless Avro body. It is the Avro specification's own framing, so Apache Avro's
``BinaryMessageEncoder`` / ``BinaryMessageDecoder`` (Java), its Python package and any producer
written from the specification read and write the same bytes (``tests/interop`` proves it for
the first two). It needs no schema-registry service, and still lets a reader resolve records
written with any schema version it knows: the current ones in ``schemas/`` and every released
one under ``schemas/released/``.

Transition: releases before 2026-12 wrote the fingerprint's bytes in reverse order. Such
records are still read (``LEGACY_HEADER_DEADLINE`` says until when) and counted in
``modelci_serde_legacy_header_records_total``; nothing writes them any more. See
``docs/wire-format.md``.

Decoding never swallows: bad bytes raise one `SerdeError` that names the topic, partition,
offset and a machine-readable reason, which consumers turn into a dead-letter record.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form
from prometheus_client import Counter

from schemas import RELEASED_DIR, SCHEMA_DIR
from services.common.errors import SchemaError, SerdeError
from services.common.events import E, Event

MARKER = b"\xc3\x01"
HEADER_LEN = len(MARKER) + 8

LEGACY_HEADER_DEADLINE = "2027-06-30"
"""Last day on which a release reads records whose header carries the fingerprint reversed.

Long enough for every topic's retention (7 days by default) and for sample ranges the registry
still points at (lineage of versions trained before the fix) to age out; the counter below
says when a deployment has stopped seeing them, which is the signal to upgrade past it."""

LEGACY_HEADERS = Counter(
    "modelci_serde_legacy_header_records_total",
    "Records read whose single-object header carries the schema fingerprint byte-reversed "
    "(written by ModelCI-e before 2026-12), by event. Readable until LEGACY_HEADER_DEADLINE.",
    ["event"],
    registry=None,
)
"""Process-wide (the serde is shared by every service); `services.common.metrics.serve` puts
it on each service's own registry."""


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """CRC-64-AVRO fingerprint of a schema, as the 8 bytes of the wire header.

    The specification's header holds the 64-bit fingerprint little-endian. fastavro's hex
    string is already that byte sequence (it formats the little-endian bytes, not the number),
    so it is taken as bytes; the spec's test vector is checked in ``tests/unit/test_serde.py``.
    """
    parsed = fastavro.parse_schema(schema, named_schemas={})
    canonical = to_parsing_canonical_form(parsed)
    return bytes.fromhex(_fingerprint(canonical, "CRC-64-AVRO"))


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one event's schema, parsed once."""

    name: str
    """Full record name, e.g. ``io.modelci.events.InferenceRequest``."""
    source: Path
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def load_schema_file(path: Path) -> SchemaVersion:
    """Parses one ``.avsc`` file, failing with the file name when it is not a valid schema."""
    try:
        raw = json.loads(path.read_text())
        parsed = fastavro.parse_schema(raw, named_schemas={})
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"{path}: not a valid Avro schema: {exc}") from exc
    if raw.get("type") != "record":
        raise SchemaError(f"{path}: top-level schema must be a record")
    name = parsed["name"]
    return SchemaVersion(name=name, source=path, raw=raw, parsed=parsed, fingerprint=schema_fingerprint(raw))


class SchemaRegistry:
    """The schemas this process knows: current versions to write, every known version to read."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR) -> None:
        self.current: dict[str, SchemaVersion] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        self.by_legacy_fingerprint: dict[bytes, SchemaVersion] = {}
        """The same versions under the byte-reversed header of releases before 2026-12."""
        for path in sorted(schema_dir.glob("*.avsc")):
            version = load_schema_file(path)
            if version.short_name in self.current:
                raise SchemaError(f"{path}: record {version.name} is defined twice")
            self.current[version.short_name] = version
            self.by_fingerprint[version.fingerprint] = version
        if released_dir.is_dir():
            for path in sorted(released_dir.glob("*/*.avsc")):
                version = load_schema_file(path)
                self.by_fingerprint.setdefault(version.fingerprint, version)
        for version in self.by_fingerprint.values():
            legacy = version.fingerprint[::-1]
            if legacy not in self.by_fingerprint:  # a palindrome or a collision is read as written
                self.by_legacy_fingerprint[legacy] = version

    def writer(self, header: bytes) -> tuple[SchemaVersion | None, bool]:
        """The writer schema a header names, and whether it named it the pre-2026-12 way."""
        version = self.by_fingerprint.get(header)
        if version is not None:
            return version, False
        return self.by_legacy_fingerprint.get(header), True

    def get(self, event: str) -> SchemaVersion:
        try:
            return self.current[event]
        except KeyError:
            raise SchemaError(f"no schema for event {event!r}; known: {sorted(self.current)}") from None


class AvroSerde:
    """Encodes and decodes events by name (``"PredictionBatch"``), resolving older writers."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or default_registry()

    def encode(self, event: str, record: dict[str, Any]) -> bytes:
        version = self.registry.get(event)
        out = io.BytesIO()
        out.write(MARKER)
        out.write(version.fingerprint)
        try:
            fastavro.schemaless_writer(out, version.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerdeError("invalid_record", f"{event} record does not match its schema: {exc}") from exc
        return out.getvalue()

    def decode(
        self,
        event: str,
        data: bytes | None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Decodes one record written with any known version of ``event``'s schema."""

        def fail(reason: str, detail: str) -> SerdeError:
            return SerdeError(reason, detail, topic=topic, partition=partition, offset=offset)

        if not data:
            raise fail("empty", "record has no value")
        if len(data) < HEADER_LEN or data[:2] != MARKER:
            raise fail("bad_marker", f"not an Avro single-object record (starts with {bytes(data[:4])!r})")
        writer, legacy = self.registry.writer(bytes(data[2:HEADER_LEN]))
        if writer is None:
            raise fail("unknown_schema", f"schema fingerprint {bytes(data[2:HEADER_LEN]).hex()} is not known here")
        reader = self.registry.get(event)
        if writer.name != reader.name:
            raise fail("wrong_schema", f"record of schema {writer.short_name} where {event} was expected")
        body = io.BytesIO(data)
        body.seek(HEADER_LEN)
        try:
            if writer is reader:
                record = fastavro.schemaless_reader(body, writer.parsed, None)
            else:
                record = fastavro.schemaless_reader(body, writer.parsed, reader.parsed)
        except (EOFError, IndexError, StopIteration) as exc:  # the body ended early
            raise fail("truncated", f"record ends inside its {writer.short_name} body") from exc
        except Exception as exc:  # fastavro raises ValueError, IndexError, UnicodeError, ...
            raise fail("corrupt", f"body does not decode as {writer.short_name}: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data):
            raise fail("trailing_bytes", f"{len(data) - body.tell()} bytes left after the {writer.short_name} record")
        if legacy:
            LEGACY_HEADERS.labels(event).inc()
        return record


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    return SchemaRegistry()


@lru_cache(maxsize=1)
def default_serde() -> AvroSerde:
    return AvroSerde()


def encode_event(event: "Event", serde: AvroSerde | None = None) -> bytes:
    """Encodes a typed event with its own schema."""
    return (serde or default_serde()).encode(event.SCHEMA, event.to_record())


def decode_event(cls: "type[E]", data: bytes | None, serde: AvroSerde | None = None, **where: Any) -> "E":
    """Decodes bytes into the typed event ``cls``; ``where`` is topic/partition/offset for errors."""
    return cls.from_record((serde or default_serde()).decode(cls.SCHEMA, data, **where))
