"""Real local infrastructure for the embedded default and the test suites.

Each component (Apache Kafka, Tansu, Redis, Triton, Prometheus) is a real process started
from files in ``infra/``, bound to 127.0.0.1 on configurable ports, keeping its data under one
run folder, and stopped by the PID it recorded there.
"""
