"""Server-rendered pages: login, models, a model's history and actions, audit, admin.

Forms post to the routes below with the session's CSRF token and are redirected back (303);
the live parts of a page are HTML fragments that ``console.js`` re-fetches when a server-sent
event arrives, so the pages update without reload and with no build step.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import chart
from services.console.auth import Principal
from services.console.errors import ConsoleError, CsrfFailed, InvalidRequest, TooManyAttempts
from services.console.roles import Role
from services.console.security import (CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSION_COOKIE, admin, operator,
                                       viewer)
from services.common.errors import ModelCIError

router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, principal: Principal | None, status: int = 200, **context: Any) -> HTMLResponse:
    console = request.app.state.console
    context.update(request=request, me=principal, Role=Role, csrf=principal.csrf if principal else None,
                   csrf_field=CSRF_FIELD, flash=request.query_params.get("flash"), error=request.query_params.get("error"))
    return console.templates.TemplateResponse(request, name, context, status_code=status)


def _back(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


# login -------------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", None, next=_safe_next(next), login_csrf=token)
    settings = request.app.state.console.settings
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure, max_age=600)
    return response


@router.post("/login")
def login(request: Request, username: str = Form(...), password: str = Form(...), csrf_token: str = Form(""),
          next: str = Form("/")) -> Response:
    console = request.app.state.console
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        console.metrics.logins.labels("csrf").inc()
        raise CsrfFailed("login form expired or forged; reload the login page")
    settings = console.settings
    if console.auth.locked(username[:64], settings.login_max_failures):
        console.metrics.logins.labels("locked").inc()
        console.audit.record(username[:64], "login", "refused", detail="too many failed logins")
        raise TooManyAttempts("too many failed logins for this user; try again later")
    user = console.auth.verify_password(username, password)
    if user is None:
        console.auth.login_failed(username[:64], settings.login_lockout_s)
        console.metrics.logins.labels("failed").inc()
        console.audit.record(username[:64], "login", "failed")
        return _render(request, "login.html", None, status=401, next=_safe_next(next), login_csrf=cookie,
                       login_error="wrong user name or password")
    console.auth.login_succeeded(user.name)
    sid, _csrf = console.auth.create_session(user, console.settings.session_ttl_s)
    console.metrics.logins.labels("ok").inc()
    console.audit.record(user.name, "login", "done")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, console.security.signer.sign(sid), httponly=True, samesite="strict",
                        secure=console.settings.cookie_secure, max_age=console.settings.session_ttl_s, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, p: Principal = Depends(viewer)) -> Response:
    console = request.app.state.console
    sid = console.security.signer.unsign(request.cookies.get(SESSION_COOKIE))
    if sid:
        console.auth.end_session(sid)
    console.audit.record(p.name, "logout", "done")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# models ------------------------------------------------------------------------------------------
def _models_context(request: Request) -> dict[str, Any]:
    views = request.app.state.console.views
    models = views.models()
    return {"models": models, "charts": {m["name"]: chart.svg(views.accuracy_series(m["name"], 240)) for m in models}}


@router.get("/", response_class=HTMLResponse)
def models_page(request: Request, p: Principal = Depends(viewer)) -> HTMLResponse:
    return _render(request, "models.html", p, **_models_context(request))


@router.get("/fragments/models", response_class=HTMLResponse)
def models_fragment(request: Request, p: Principal = Depends(viewer)) -> HTMLResponse:
    return _render(request, "_models_table.html", p, **_models_context(request))


def _model_context(request: Request, name: str) -> dict[str, Any]:
    views = request.app.state.console.views
    return {
        "model": views.model(name),
        "versions": views.versions(name),
        "updates": views.updates(name),
        "events": views.events(name, limit=50),
        "chart": chart.svg(views.accuracy_series(name), width=640, height=160),
        "audit": request.app.state.console.audit.entries(20, model=name),
    }


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(name: str, request: Request, p: Principal = Depends(viewer)) -> HTMLResponse:
    return _render(request, "model.html", p, **_model_context(request, name))


@router.get("/fragments/models/{name}", response_class=HTMLResponse)
def model_fragment(name: str, request: Request, p: Principal = Depends(viewer)) -> HTMLResponse:
    return _render(request, "_model_detail.html", p, **_model_context(request, name))


def _json_field(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{what} is not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return value


@router.post("/models/{name}/actions/{action}")
async def model_action(name: str, action: str, request: Request, p: Principal = Depends(operator)) -> Response:
    """One form route per model for every action; the result comes back as a flash message."""
    actions = request.app.state.console.actions
    form = await request.form()
    version = int(form["version"]) if form.get("version") else None
    page = f"/models/{quote(name)}"
    try:
        if action == "approve" and version is not None:
            event = actions.approve(p.name, name, version)
        elif action == "reject" and version is not None:
            event = actions.reject(p.name, name, version, str(form.get("reason", "")))
        elif action == "rollback":
            event = actions.rollback(p.name, name, version, str(form.get("reason", "")))
        elif action == "update":
            event = actions.trigger_update(p.name, name, str(form.get("strategy") or "") or None,
                                           _json_field(str(form.get("hyperparameters", "")), "hyperparameters"))
        elif action == "strategy":
            event = actions.set_strategy(p.name, name, str(form.get("strategy", "")),
                                         _json_field(str(form.get("hyperparameters", "")), "hyperparameters"))
        elif action == "policy":
            policy = _json_field(str(form.get("extra", "")), "policy")
            if form.get("promotion"):
                policy["promotion"] = str(form["promotion"])
            event = actions.set_policy(p.name, name, policy)
        else:
            raise InvalidRequest(f"unknown action {action!r}")
    except ConsoleError as exc:
        if exc.http_status in (401, 403, 404):
            raise
        return _back(page, error=str(exc))
    except ModelCIError as exc:
        return _back(page, error=f"{exc.reason}: {exc}")
    what = f"v{version} " if version is not None else ""
    return _back(page, flash=f"{action} {what}sent (event {event.event_id[:8]}) as {p.name}")


# audit and admin ---------------------------------------------------------------------------------
@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, p: Principal = Depends(viewer)) -> HTMLResponse:
    return _render(request, "audit.html", p, entries=request.app.state.console.audit.entries(200))


def _admin_page(request: Request, p: Principal, status: int = 200, **extra: Any) -> HTMLResponse:
    auth = request.app.state.console.auth
    return _render(request, "admin.html", p, status=status, users=auth.list_users(), tokens=auth.list_tokens(),
                   roles=[r.value for r in Role], **extra)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, p: Principal = Depends(admin)) -> HTMLResponse:
    return _admin_page(request, p)


@router.post("/admin/users", response_class=HTMLResponse)
def admin_add_user(request: Request, name: str = Form(...), role: str = Form(...), p: Principal = Depends(admin)) -> HTMLResponse:
    console = request.app.state.console
    try:
        user, password = console.auth.add_user(name, role)
    except ConsoleError as exc:
        return _admin_page(request, p, status=exc.http_status, admin_error=str(exc))
    console.audit.record(p.name, "user_add", "done", params={"user": user.name, "role": str(user.role)})
    return _admin_page(request, p, secret_note=f"password of {user.name} (shown once)", secret=password)


@router.post("/admin/users/{user}/delete")
def admin_delete_user(user: str, request: Request, p: Principal = Depends(admin)) -> Response:
    console = request.app.state.console
    console.auth.delete_user(user)
    console.audit.record(p.name, "user_delete", "done", params={"user": user})
    return _back("/admin", flash=f"deleted {user}")


@router.post("/admin/tokens", response_class=HTMLResponse)
def admin_create_token(request: Request, user: str = Form(...), label: str = Form(""), p: Principal = Depends(admin)) -> HTMLResponse:
    console = request.app.state.console
    try:
        info, raw = console.auth.create_token(user, label)
    except ConsoleError as exc:
        return _admin_page(request, p, status=exc.http_status, admin_error=str(exc))
    console.audit.record(p.name, "token_create", "done", params={"user": user, "token_id": info.id})
    return _admin_page(request, p, secret_note=f"API token {info.id} for {user} (shown once)", secret=raw)


@router.post("/admin/tokens/{token_id}/revoke")
def admin_revoke_token(token_id: str, request: Request, p: Principal = Depends(admin)) -> Response:
    console = request.app.state.console
    info = console.auth.revoke_token(token_id)
    console.audit.record(p.name, "token_revoke", "done", params={"user": info.user, "token_id": token_id})
    return _back("/admin", flash=f"revoked token {token_id}")
