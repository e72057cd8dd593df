"""The code behind ``modelci bench``, one folder per area; nothing under ``services/`` imports it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository root: the benchmarks start services as ``python -m services.<name>`` from it."""
