"""Errors of the console, each with the HTTP status it maps to (in ``app.py``, one place)."""

from __future__ import annotations

from services.common.errors import ModelCIError


class ConsoleError(ModelCIError):
    reason = "console"
    http_status = 400


class Unauthenticated(ConsoleError):
    reason = "unauthenticated"
    http_status = 401


class Forbidden(ConsoleError):
    reason = "forbidden"
    http_status = 403


class CsrfFailed(Forbidden):
    reason = "csrf"


class NotFound(ConsoleError):
    reason = "not_found"
    http_status = 404


class Conflict(ConsoleError):
    reason = "conflict"
    http_status = 409


class InvalidRequest(ConsoleError):
    reason = "invalid"
    http_status = 422


class TooManyAttempts(ConsoleError):
    reason = "locked"
    http_status = 429
