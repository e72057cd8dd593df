"""Avro schemas of every ModelCI-e event, one `.avsc` per event.

`released/<version>/` keeps the schemas as last released; `modelci schemas check` verifies that
each current schema can still read data written with its released one.
"""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
RELEASED_DIR = SCHEMA_DIR / "released"
