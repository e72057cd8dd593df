"""Structured logs for every service: JSON lines with the model and version in context.

Model and version live in ContextVars (set by the code handling an event), so every log line
written while handling it carries them without passing them around. Fields whose names look
like secrets are masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

import structlog

model_var: ContextVar[str | None] = ContextVar("model", default=None)
version_var: ContextVar[int | None] = ContextVar("version", default=None)

_SECRET_MARKERS = ("password", "secret", "token", "sasl", "credential")


def _add_context(_, __, event: dict) -> dict:
    model = model_var.get()
    if model is not None:
        event.setdefault("model", model)
    version = version_var.get()
    if version is not None:
        event.setdefault("version", version)
    return event


def _mask_secrets(_, __, event: dict) -> dict:
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event[key] = "**********"
    return event


def configure(service: str, level: str = "INFO", fmt: str = "json") -> structlog.stdlib.BoundLogger:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s", force=True)
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_context,
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger(service=service)
