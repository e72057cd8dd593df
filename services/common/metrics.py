"""Prometheus metrics: one registry per service, served on its own /metrics port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server


def with_shared(registry: CollectorRegistry) -> CollectorRegistry:
    """Adds the process-wide metrics of shared code (the serde's) to a service's registry, once.

    Shared code cannot know which service's registry it runs under, so it keeps unregistered
    collectors and every service exports them beside its own.
    """
    from services.common.serde import LEGACY_HEADERS

    try:
        registry.register(LEGACY_HEADERS)
    except ValueError:  # already there: serve() was called again on the same registry
        pass
    return registry


def serve(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> int:
    """Starts the /metrics endpoint in a daemon thread; returns the port it bound."""
    server, _thread = start_http_server(port, addr=host, registry=with_shared(registry))
    return server.server_port
