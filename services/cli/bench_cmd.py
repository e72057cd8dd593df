"""``modelci bench``: benchmarks that print JSON (and write plots) for the README's figures.

Each benchmark lives in its own module and registers its command on ``app`` below.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Run benchmarks and print their results as JSON.", no_args_is_help=True)
from services.cli import bench_interference  # noqa: E402,F401
from services.cli import bench_deploy  # noqa: E402,F401
from services.cli import bench_strategies  # noqa: E402,F401
from services.cli import bench_drift  # noqa: E402,F401
from services.cli import bench_families  # noqa: E402,F401
