"""The versioned REST API (``/api/v1``): reads for viewers, actions for operators, users and
tokens for admins. Every route declares the role it needs; OpenAPI is served at ``/docs``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.console import live
from services.console.auth import Principal
from services.console.roles import Role
from services.console.security import admin, operator, viewer

router = APIRouter(prefix="/api/v1")


def state(request: Request):
    return request.app.state.console


class UpdateBody(BaseModel):
    strategy: str | None = None
    """Run this strategy for this update only (the model's own strategy when empty)."""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class RejectBody(BaseModel):
    reason: str = ""


class RollbackBody(BaseModel):
    version: int | None = None
    """Version to restore; the previous serving version when empty."""
    reason: str = ""


class StrategyBody(BaseModel):
    strategy: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class PolicyBody(BaseModel):
    policy: dict[str, Any]
    """Fields to change, e.g. ``{"promotion": "manual"}``."""


class UserBody(BaseModel):
    name: str
    role: Role
    password: str | None = None
    """Generated (and returned once) when empty."""


class RoleBody(BaseModel):
    role: Role


class TokenBody(BaseModel):
    user: str
    label: str = ""


def accepted(event) -> dict[str, Any]:
    return {"status": "sent", "event_id": event.event_id, "event": event.to_record()}


# reads -------------------------------------------------------------------------------------------
@router.get("/me")
def me(p: Principal = Depends(viewer)) -> dict[str, Any]:
    return {"name": p.name, "role": str(p.role), "via": p.via}


@router.get("/models")
def list_models(request: Request, _: Principal = Depends(viewer)) -> list[dict[str, Any]]:
    return state(request).views.models()


@router.get("/models/{name}")
def get_model(name: str, request: Request, _: Principal = Depends(viewer)) -> dict[str, Any]:
    return state(request).views.model(name)


@router.get("/models/{name}/versions")
def list_versions(name: str, request: Request, _: Principal = Depends(viewer)) -> list[dict[str, Any]]:
    return state(request).views.versions(name)


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, request: Request, _: Principal = Depends(viewer)) -> dict[str, Any]:
    return state(request).views.version(name, version)


@router.get("/models/{name}/events")
def list_events(name: str, request: Request, kind: str | None = Query(None, pattern="^(drift|update|candidate|deployment)$"),
                limit: int = Query(100, ge=1, le=1000), _: Principal = Depends(viewer)) -> list[dict[str, Any]]:
    return state(request).views.events(name, kind, limit)


@router.get("/models/{name}/updates")
def list_updates(name: str, request: Request, _: Principal = Depends(viewer)) -> list[dict[str, Any]]:
    return state(request).views.updates(name)


@router.get("/models/{name}/accuracy")
def accuracy(name: str, request: Request, limit: int = Query(720, ge=1, le=10000),
             _: Principal = Depends(viewer)) -> dict[str, Any]:
    return state(request).views.accuracy_series(name, limit)


@router.get("/audit")
def audit(request: Request, model: str | None = None, actor: str | None = None, limit: int = Query(100, ge=1, le=1000),
          _: Principal = Depends(viewer)) -> list[dict[str, Any]]:
    return state(request).audit.entries(limit, model=model, actor=actor)


@router.get("/events", response_class=StreamingResponse)
async def events(request: Request, model: str | None = None, _: Principal = Depends(viewer)) -> StreamingResponse:
    """Server-sent events: ``drift``, ``update``, ``candidate``, ``deployment``, ``accuracy``."""
    console = state(request)
    console.metrics.live_clients.inc()

    async def frames():
        try:
            async for frame in live.stream(console.async_redis, console.settings.redis.key_prefix, request.is_disconnected, model):
                yield frame
        finally:
            console.metrics.live_clients.dec()

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# actions -----------------------------------------------------------------------------------------
@router.post("/models/{name}/updates", status_code=202)
def trigger_update(name: str, request: Request, body: UpdateBody | None = None, p: Principal = Depends(operator)) -> dict[str, Any]:
    body = body or UpdateBody()
    return accepted(state(request).actions.trigger_update(p.name, name, body.strategy, body.hyperparameters))


@router.post("/models/{name}/versions/{version}/approve", status_code=202)
def approve(name: str, version: int, request: Request, p: Principal = Depends(operator)) -> dict[str, Any]:
    return accepted(state(request).actions.approve(p.name, name, version))


@router.post("/models/{name}/versions/{version}/reject", status_code=202)
def reject(name: str, version: int, request: Request, body: RejectBody | None = None, p: Principal = Depends(operator)) -> dict[str, Any]:
    return accepted(state(request).actions.reject(p.name, name, version, (body or RejectBody()).reason))


@router.post("/models/{name}/rollback", status_code=202)
def rollback(name: str, request: Request, body: RollbackBody | None = None, p: Principal = Depends(operator)) -> dict[str, Any]:
    body = body or RollbackBody()
    return accepted(state(request).actions.rollback(p.name, name, body.version, body.reason))


@router.put("/models/{name}/strategy", status_code=202)
def set_strategy(name: str, body: StrategyBody, request: Request, p: Principal = Depends(operator)) -> dict[str, Any]:
    return accepted(state(request).actions.set_strategy(p.name, name, body.strategy, body.hyperparameters))


@router.put("/models/{name}/policy", status_code=202)
def set_policy(name: str, body: PolicyBody, request: Request, p: Principal = Depends(operator)) -> dict[str, Any]:
    return accepted(state(request).actions.set_policy(p.name, name, body.policy))


# users and tokens --------------------------------------------------------------------------------
@router.get("/users")
def list_users(request: Request, _: Principal = Depends(admin)) -> list[dict[str, Any]]:
    return [u.public() for u in state(request).auth.list_users()]


@router.post("/users", status_code=201)
def add_user(body: UserBody, request: Request, p: Principal = Depends(admin)) -> dict[str, Any]:
    console = state(request)
    user, password = console.auth.add_user(body.name, body.role, body.password)
    console.audit.record(p.name, "user_add", "done", params={"user": user.name, "role": str(user.role)})
    return {**user.public(), **({"password": password} if body.password is None else {})}


@router.put("/users/{user}/role")
def set_role(user: str, body: RoleBody, request: Request, p: Principal = Depends(admin)) -> dict[str, Any]:
    console = state(request)
    updated = console.auth.set_role(user, body.role)
    console.audit.record(p.name, "user_role", "done", params={"user": user, "role": str(body.role)})
    return updated.public()


@router.delete("/users/{user}", status_code=204)
def delete_user(user: str, request: Request, p: Principal = Depends(admin)) -> None:
    console = state(request)
    console.auth.delete_user(user)
    console.audit.record(p.name, "user_delete", "done", params={"user": user})


@router.get("/tokens")
def list_tokens(request: Request, user: str | None = None, _: Principal = Depends(admin)) -> list[dict[str, Any]]:
    return [t.public() for t in state(request).auth.list_tokens(user)]


@router.post("/tokens", status_code=201)
def create_token(body: TokenBody, request: Request, p: Principal = Depends(admin)) -> dict[str, Any]:
    """Creates an API token; the raw ``token`` is in this response only."""
    console = state(request)
    info, raw = console.auth.create_token(body.user, body.label)
    console.audit.record(p.name, "token_create", "done", params={"user": body.user, "token_id": info.id})
    return {**info.public(), "token": raw}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, request: Request, p: Principal = Depends(admin)) -> None:
    console = state(request)
    info = console.auth.revoke_token(token_id)
    console.audit.record(p.name, "token_revoke", "done", params={"user": info.user, "token_id": token_id})
