"""Runs a drift worker under cProfile timed by the main thread's CPU clock.

On a shared machine a wall-clock profiler charges time the process spent descheduled to
whatever frame happened to be running; timing by ``time.thread_time`` counts only the CPU the
worker's main thread used. Usage: ``python -m benchmarks.drift.cpuprofile OUT.pstats``.
"""

from __future__ import annotations

import cProfile
import sys
import time

from services.drift.worker import main

if __name__ == "__main__":
    out = sys.argv[1]
    sys.argv = [sys.argv[0]]
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        main()
    finally:
        profiler.disable()
        profiler.dump_stats(out)
