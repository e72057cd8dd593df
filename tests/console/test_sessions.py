"""Browser sessions over plain HTTP: login, cookie flags, CSRF on every state change, logout."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from services.console.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE

from tests.console.conftest import Console


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} field"
    return match.group(1)


def login(console: Console, user: str, password: str) -> tuple[httpx.Client, str]:
    """Logs in like a browser; returns the client (with its cookies) and the page's CSRF token."""
    http = console.client()
    page = http.get("/login")
    response = http.post("/login", data={"username": user, "password": password,
                                         "csrf_token": _hidden(page.text, "csrf_token"), "next": "/"})
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    home = http.get("/")
    assert home.status_code == 200
    return http, _hidden(home.text, "csrf_token")


def test_pages_redirect_to_login_and_api_says_401(console: Console) -> None:
    with console.client() as http:
        page = http.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert http.get("/api/v1/models", headers={"Accept": "text/html"}).status_code == 401


def test_wrong_password_and_forged_login(console: Console) -> None:
    with console.client() as http:
        page = http.get("/login")
        token = _hidden(page.text, "csrf_token")
        assert http.post("/login", data={"username": "admin", "password": "wrong-password", "csrf_token": token}).status_code == 401
        http.cookies.delete(LOGIN_CSRF_COOKIE)
        forged = http.post("/login", data={"username": "admin", "password": console.passwords["admin"], "csrf_token": token})
        assert forged.status_code == 403 and SESSION_COOKIE not in http.cookies


def test_forged_form_post_without_csrf_token_fails(console: Console, model: str) -> None:
    http, csrf = login(console, "operator-user", console.passwords["operator"])
    with closing(http):
        before = len(http.get("/api/v1/audit", params={"model": model}).json())
        forged = http.post(f"/models/{model}/actions/approve", data={"version": "3"})
        assert forged.status_code == 403
        wrong = http.post(f"/models/{model}/actions/approve", data={"version": "3", "csrf_token": "x" * 43})
        assert wrong.status_code == 403
        api_forged = http.post(f"/api/v1/models/{model}/versions/3/approve")  # cookie alone is not enough for the API
        assert api_forged.status_code == 403
        assert len(http.get("/api/v1/audit", params={"model": model}).json()) == before  # nothing happened
        ok = http.post(f"/models/{model}/actions/approve", data={"version": "3", "csrf_token": csrf})
        assert ok.status_code == 303 and "flash=approve" in ok.headers["location"]
        via_header = http.post(f"/api/v1/models/{model}/versions/3/reject", headers={"X-CSRF-Token": csrf})
        assert via_header.status_code == 202
        audit = http.get("/api/v1/audit", params={"model": model}).json()
        assert [a["action"] for a in audit[:2]] == ["reject", "approve"] and audit[0]["actor"] == "operator-user"


def test_viewer_session_cannot_act(console: Console, model: str) -> None:
    http, csrf = login(console, "viewer-user", console.passwords["viewer"])
    with closing(http):
        page = http.get(f"/models/{model}")
        assert page.status_code == 200 and "Approve" not in page.text and "Trigger update" not in page.text
        assert http.post(f"/models/{model}/actions/approve", data={"version": "3", "csrf_token": csrf}).status_code == 403
        assert http.get("/admin", headers={"Accept": "text/html"}).status_code == 403


def test_admin_pages_create_user_and_token_shown_once(console: Console) -> None:
    http, csrf = login(console, "admin", console.passwords["admin"])
    with closing(http):
        created = http.post("/admin/users", data={"name": "newbie", "role": "operator", "csrf_token": csrf})
        assert created.status_code == 200
        password = re.search(r'<code id="secret">([^<]+)</code>', created.text).group(1)
        token_page = http.post("/admin/tokens", data={"user": "newbie", "label": "ci", "csrf_token": csrf})
        token = re.search(r'<code id="secret">([^<]+)</code>', token_page.text).group(1)
        assert token.startswith("mci_") and token not in http.get("/admin").text  # shown once
    with console.client() as script:
        assert script.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["role"] == "operator"
    login(console, "newbie", password)[0].close()
    stored = b" ".join(v for k in console.state.redis.scan_iter(match=f"{console.settings.redis.key_prefix}console:*")
                       if console.state.redis.type(k) in (b"hash", b"string") for v in _values(console, k))
    assert password.encode() not in stored and token.encode() not in stored  # only hashes are stored


def _values(console: Console, key: bytes) -> list[bytes]:
    r = console.state.redis
    return list(r.hvals(key)) if r.type(key) == b"hash" else [r.get(key) or b""]


def test_logout_ends_the_session(console: Console) -> None:
    http, csrf = login(console, "viewer-user", console.passwords["viewer"])
    with closing(http):
        assert http.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert http.get("/api/v1/me").status_code == 401


def test_repeated_wrong_passwords_lock_the_user_out(console: Console) -> None:
    console.state.auth.add_user("target", "viewer", "the-right-password")
    with console.client() as http:
        token = _hidden(http.get("/login").text, "csrf_token")
        for _ in range(console.settings.login_max_failures):
            assert http.post("/login", data={"username": "target", "password": "guess-guess", "csrf_token": token}).status_code == 401
        locked = http.post("/login", data={"username": "target", "password": "the-right-password", "csrf_token": token})
        assert locked.status_code == 429 and SESSION_COOKIE not in http.cookies  # even the right password waits
    audit = console.state.audit.entries(50, actor="target")
    assert audit[0]["result"] == "refused" and [a["result"] for a in audit].count("failed") == console.settings.login_max_failures
