"""Every API endpoint with every role: 401 without credentials, 403 below the role it needs,
success at or above it. Runs against the real console on real Kafka and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from services.console.app import api_operations
from services.console.roles import Role

from tests.console.conftest import Console, give_samples


@dataclass
class Endpoint:
    method: str
    path: str  # {model} is replaced by the test's model
    needs: Role | None
    ok: int
    body: Callable[[Console], dict] | None = None
    prepare: Callable[[Console, str], dict] | None = None
    """Creates what the call acts on; returns values for the path (e.g. a user to delete)."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _new_user(c: Console, _model: str) -> dict:
    name = f"u{uuid.uuid4().hex[:8]}"
    c.state.auth.add_user(name, Role.VIEWER)
    return {"user": name}


def _new_token(c: Console, _model: str) -> dict:
    info, _ = c.state.auth.create_token("viewer-user", "to revoke")
    return {"token_id": info.id}


ENDPOINTS = [
    Endpoint("GET", "/api/v1/me", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}/versions", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}/versions/2", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}/events", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}/updates", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/models/{model}/accuracy", Role.VIEWER, 200),
    Endpoint("GET", "/api/v1/audit", Role.VIEWER, 200),
    Endpoint("POST", "/api/v1/models/{model}/updates", Role.OPERATOR, 202, body=lambda c: {}, prepare=give_samples),
    Endpoint("POST", "/api/v1/models/{model}/versions/3/approve", Role.OPERATOR, 202),
    Endpoint("POST", "/api/v1/models/{model}/versions/3/reject", Role.OPERATOR, 202, body=lambda c: {"reason": "test"}),
    Endpoint("POST", "/api/v1/models/{model}/rollback", Role.OPERATOR, 202, body=lambda c: {"version": 1}),
    Endpoint("PUT", "/api/v1/models/{model}/strategy", Role.OPERATOR, 202, body=lambda c: {"strategy": "ewc", "hyperparameters": {"ewc_lambda": 0.4}}),
    Endpoint("PUT", "/api/v1/models/{model}/policy", Role.OPERATOR, 202, body=lambda c: {"policy": {"promotion": "auto"}}),
    Endpoint("GET", "/api/v1/users", Role.ADMIN, 200),
    Endpoint("POST", "/api/v1/users", Role.ADMIN, 201, body=lambda c: {"name": f"n{uuid.uuid4().hex[:8]}", "role": "viewer"}),
    Endpoint("PUT", "/api/v1/users/{user}/role", Role.ADMIN, 200, body=lambda c: {"role": "operator"}, prepare=_new_user),
    Endpoint("DELETE", "/api/v1/users/{user}", Role.ADMIN, 204, prepare=_new_user),
    Endpoint("GET", "/api/v1/tokens", Role.ADMIN, 200),
    Endpoint("POST", "/api/v1/tokens", Role.ADMIN, 201, body=lambda c: {"user": "viewer-user", "label": "x"}),
    Endpoint("DELETE", "/api/v1/tokens/{token_id}", Role.ADMIN, 204, prepare=_new_token),
]
CALLERS = [None, "viewer", "operator", "admin"]


def expected(endpoint: Endpoint, caller: str | None) -> int:
    if caller is None:
        return 401
    return endpoint.ok if Role(caller).allows(endpoint.needs) else 403


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "anonymous")
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_endpoint_by_role(console: Console, model: str, endpoint: Endpoint, caller: str | None) -> None:
    values = {"model": model, **(endpoint.prepare(console, model) if endpoint.prepare else {})}
    with console.client(caller) as http:
        kwargs = {"json": endpoint.body(console)} if endpoint.body else {}
        response = http.request(endpoint.method, endpoint.path.format(**values), **kwargs)
    assert response.status_code == expected(endpoint, caller), response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthenticated"
    if response.status_code == 403:
        assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "anonymous")
def test_live_events_stream_by_role(console: Console, caller: str | None) -> None:
    with console.client(caller) as http, http.stream("GET", "/api/v1/events") as response:
        assert response.status_code == (401 if caller is None else 200)
        if caller is not None:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = next(response.iter_lines())
            assert first == "event: hello"


def test_bad_token_and_wrong_scheme_are_401(console: Console) -> None:
    for header in ("Bearer mci_not-a-token", "Basic YWRtaW46eA==", "Bearer"):
        with console.client() as http:
            assert http.get("/api/v1/models", headers={"Authorization": header}).status_code == 401


def test_revoked_token_and_deleted_user_lose_access(console: Console) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    console.state.auth.add_user(name, Role.OPERATOR)
    info, raw = console.state.auth.create_token(name)
    with console.client() as http:
        h = {"Authorization": f"Bearer {raw}"}
        assert http.get("/api/v1/me", headers=h).json() == {"name": name, "role": "operator", "via": "token"}
        console.state.auth.set_role(name, Role.VIEWER)  # demotion applies at once
        assert http.get("/api/v1/me", headers=h).json()["role"] == "viewer"
        with console.client("admin") as admin:
            assert admin.delete(f"/api/v1/tokens/{info.id}").status_code == 204
        assert http.get("/api/v1/me", headers=h).status_code == 401
        _, raw2 = console.state.auth.create_token(name)
        with console.client("admin") as admin:
            assert admin.delete(f"/api/v1/users/{name}").status_code == 204
        assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {raw2}"}).status_code == 401


def test_unknown_model_is_404(console: Console) -> None:
    with console.client("operator") as http:
        assert http.get("/api/v1/models/nope").status_code == 404
        assert http.post("/api/v1/models/nope/versions/1/approve").status_code == 404


def test_openapi_published_and_every_route_guarded(console: Console) -> None:
    with console.client() as http:
        spec = http.get("/openapi.json").json()
        docs = http.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # works offline
    assert "/api/v1/models/{name}/versions/{version}/approve" in spec["paths"]
    documented = {(op["method"], op["path"]): op["role"] for op in api_operations(console.app)}
    assert "none" not in documented.values()  # no API route without an auth dependency
    assert documented[("POST", "/api/v1/models/{name}/versions/{version}/approve")] == "operator"
    tested = {(e.method, e.path.replace("{model}", "{name}").replace("/versions/2", "/versions/{version}")
               .replace("/versions/3/", "/versions/{version}/")) for e in ENDPOINTS} | {("GET", "/api/v1/events")}
    assert set(documented) == tested  # the role matrix above covers every endpoint
