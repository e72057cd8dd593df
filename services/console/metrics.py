"""The console's Prometheus metrics, on its own registry (labels bounded: route templates, not paths)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.metrics import with_shared


class ConsoleMetrics:
    def __init__(self) -> None:
        r = self.registry = with_shared(CollectorRegistry())
        self.requests = Counter("modelci_console_requests_total", "HTTP requests, by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("modelci_console_request_seconds", "HTTP request duration, by route template.",
                                 ["route"], registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.actions = Counter("modelci_console_actions_total", "Actions, by action and outcome (sent, refused, failed).",
                               ["action", "outcome"], registry=r)
        self.logins = Counter("modelci_console_logins_total", "Browser logins, by outcome.", ["outcome"], registry=r)
        self.events = Counter("modelci_console_events_total", "CL events read, by logical topic and outcome (applied, replay, dead_letter).",
                              ["topic", "outcome"], registry=r)
        self.live_clients = Gauge("modelci_console_live_clients", "Open server-sent event streams.", registry=r)
