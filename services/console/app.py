"""Composition root of the console: settings, clients, stores, routes, the event reader, shutdown.

``create_app(settings)`` builds everything from settings and returns the FastAPI app; the
reader thread starts and stops with the app's lifespan. ``main()`` (``python -m
services.console`` or ``modelci console serve``) runs it under uvicorn.
"""

from __future__ import annotations

import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common import kafka, topics
from services.common.errors import ModelCIError, TransientError
from services.common.events import Event
from services.common.registry import ModelRegistry
from services.common.serde import encode_event
from services.console import api, pages
from services.console.accuracy import AccuracyTracker
from services.console.actions import Actions
from services.console.audit import AuditLog
from services.console.auth import AuthStore
from services.console.consumer import READS, EventReader
from services.console.errors import Conflict, Unauthenticated
from services.console.live import LivePublisher
from services.console.metrics import ConsoleMetrics
from services.console.sample_offsets import SampleOffsets
from services.console.roles import Role
from services.console.security import Security, Signer
from services.console.settings import ConsoleSettings
from services.console.timeline import Timeline
from services.console.views import Views

_log = structlog.get_logger("console")
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
    b"content-security-policy": b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}


class KafkaPublisher:
    """Sends one event and waits for the broker's acknowledgement (or raises)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._producer = None

    def __call__(self, topic: str, event: Event) -> None:
        if self._producer is None:
            self._producer = kafka.producer(self.settings.kafka)
        errors: list[Any] = []
        self._producer.produce(self.settings.kafka.topic(topic), key=event.model.encode(),  # type: ignore[attr-defined]
                               value=encode_event(event), on_delivery=lambda err, _msg: err and errors.append(err))
        kafka.flush(self._producer, 15.0)
        if errors:
            raise TransientError(f"broker refused the {event.SCHEMA}: {errors[0]}")

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)


@dataclass
class ConsoleState:
    """Everything a request handler needs, built once per app."""

    settings: ConsoleSettings
    redis: Any
    async_redis: Any
    metrics: ConsoleMetrics
    auth: AuthStore
    audit: AuditLog
    timeline: Timeline
    accuracy: AccuracyTracker
    views: Views
    actions: Actions
    security: Security
    templates: Jinja2Templates
    publisher: KafkaPublisher
    reader: EventReader | None = None


def build_state(settings: ConsoleSettings, metrics: ConsoleMetrics | None = None) -> ConsoleState:
    metrics = metrics or ConsoleMetrics()
    client = settings.redis.client()
    prefix = settings.redis.key_prefix
    registry = ModelRegistry(client, prefix)
    timeline = Timeline(client, prefix, settings.timeline_length, settings.seen_ttl_s)
    accuracy = AccuracyTracker(client, prefix, settings.accuracy_window, settings.series_length, settings.seen_ttl_s)
    audit = AuditLog(client, prefix, settings.audit_length)
    offsets = SampleOffsets(client, prefix)
    auth = AuthStore(client, prefix)
    publisher = KafkaPublisher(settings)
    key = settings.session_secret.get_secret_value().encode() if settings.session_secret else secrets.token_bytes(32)
    if settings.session_secret is None:
        _log.warning("no session secret set: sessions will not survive a restart or work across replicas")
    state = ConsoleState(
        settings=settings, redis=client, async_redis=settings.redis.async_client(), metrics=metrics, auth=auth,
        audit=audit, timeline=timeline, accuracy=accuracy, views=Views(registry, timeline, accuracy),
        actions=Actions(registry, audit, publisher, metrics, offsets), security=Security(auth, Signer(key)),
        templates=Jinja2Templates(directory=str(HERE / "templates")), publisher=publisher,
    )
    if settings.consume_events:
        state.reader = EventReader(settings, timeline, accuracy, LivePublisher(client, prefix, settings.live_min_interval_s), metrics,
                                   offsets)
    return state


def bootstrap_admin(state: ConsoleState) -> bool:
    """Creates ``admin`` from ``MODELCI_CONSOLE_ADMIN_PASSWORD`` when there is no user at all."""
    password = state.settings.admin_password
    if password is None or state.auth.count_users() > 0:
        return False
    try:
        state.auth.add_user("admin", Role.ADMIN, password.get_secret_value())
    except Conflict:  # another replica won the race
        return False
    state.audit.record("system", "user_add", "done", params={"user": "admin", "role": "admin", "bootstrap": True})
    _log.info("created the bootstrap admin user", user="admin")
    return True


def ensure_topics(settings: ConsoleSettings) -> None:
    names = [*READS, topics.COMMANDS]
    kafka.ensure_topics(settings.kafka, {n: 1 for n in names} | {topics.dlq(n): 1 for n in READS})


class MetricsAndHeaders:
    """ASGI middleware: request counts by route template and status, and security headers."""

    def __init__(self, app, metrics: ConsoleMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status["code"])).inc()
            if template != "/api/v1/events":
                self.metrics.latency.labels(template).observe(time.perf_counter() - started)


def api_operations(app: FastAPI) -> list[dict[str, Any]]:
    """Every API operation with the role its security dependency demands (read off the route)."""
    from fastapi.routing import APIRoute

    from services.console import security

    roles = {security.viewer: "viewer", security.operator: "operator", security.admin: "admin"}
    spec = app.openapi()["paths"]
    out = []
    for route in api.router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        role = next((roles[d.call] for d in route.dependant.dependencies if d.call in roles), "none")
        for method in sorted(route.methods):
            op = spec.get(route.path, {}).get(method.lower(), {})
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = body.get("$ref") or next((s.get("$ref") for s in body.get("anyOf", []) if "$ref" in s), None)
            out.append({"method": method, "path": route.path, "role": role, "summary": op.get("summary", ""),
                        "description": (op.get("description") or "").split("\n")[0],
                        "params": [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"],
                        "body": ref.rsplit("/", 1)[-1] if ref else ""})
    return out


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def create_app(settings: ConsoleSettings | None = None, state: ConsoleState | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    state = state or build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        bootstrap_admin(state)
        if state.reader is not None:
            ensure_topics(settings)
            state.reader.start()
        try:
            yield
        finally:
            if state.reader is not None:
                state.reader.stop()
            state.publisher.close()
            await state.async_redis.aclose()
            state.redis.close()

    # /docs is rendered here from the OpenAPI document: Swagger UI would load from a CDN, which
    # an offline deployment cannot reach and the Content-Security-Policy forbids.
    app = FastAPI(title="ModelCI-e console", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Models, versions and lineage, drift and updates; actions for the ML team.")
    app.state.console = state
    app.state.security = state.security
    app.add_middleware(MetricsAndHeaders, metrics=state.metrics)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(ModelCIError)
    async def on_error(request: Request, exc: ModelCIError) -> Response:
        if isinstance(exc, Unauthenticated) and request.method == "GET" and _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if exc.http_status >= 500:
            _log.error("request failed", path=request.url.path, reason=exc.reason, error=str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if _wants_html(request):
            return HTMLResponse(f"<!doctype html><title>{exc.http_status}</title><h1>{exc.http_status}</h1>"
                                f"<p>{escape(str(exc))}</p><p><a href='/'>back</a></p>", status_code=exc.http_status, headers=headers)
        return JSONResponse({"error": exc.reason, "detail": str(exc)}, status_code=exc.http_status, headers=headers)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        return state.templates.TemplateResponse(request, "api_docs.html", {
            "request": request, "spec": app.openapi(), "operations": api_operations(app), "me": None})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        state.redis.ping()
        reader = state.reader
        return {"ok": True, "reader": None if reader is None else reader.ready.is_set()}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main(host: str | None = None, port: int | None = None) -> None:
    """Runs the console under uvicorn until SIGTERM/SIGINT (graceful: the reader stops, the producer flushes)."""
    import uvicorn

    from services.common import logs

    settings = ConsoleSettings()
    settings.host = host or settings.host
    settings.port = port or settings.port
    logs.configure("console", settings.observability.log_level, settings.observability.log_format)
    app = create_app(settings)
    _log.info("console starting", host=settings.host, port=settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
