"""Prometheus metrics: one registry per service, served on its own /metrics port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server


def serve(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> int:
    """Starts the /metrics endpoint in a daemon thread; returns the port it bound."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server.server_port
