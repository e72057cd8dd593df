"""Who is calling, and may they: bearer tokens, signed session cookies, roles, CSRF.

Scripts send ``Authorization: Bearer mci_...``; browsers carry a session cookie (random id,
HMAC-signed, HttpOnly, SameSite=Strict) whose server-side record holds a CSRF token. Every
state-changing request made with a session must repeat that token (form field ``csrf_token``
or header ``X-CSRF-Token``), so a page on another site cannot act with the user's cookie even
where SameSite is not honoured. Bearer requests need no CSRF token: browsers never add that
header by themselves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import Request

from services.console.auth import AuthStore, Principal
from services.console.errors import CsrfFailed, Forbidden, Unauthenticated
from services.console.roles import Role

SESSION_COOKIE = "modelci_session"
LOGIN_CSRF_COOKIE = "modelci_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Signer:
    """HMAC-SHA256 signatures for cookie values."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def sign(self, value: str) -> str:
        return f"{value}.{hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        good = hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()
        return value if hmac.compare_digest(mac, good) else None


class Security:
    def __init__(self, store: AuthStore, signer: Signer) -> None:
        self.store = store
        self.signer = signer

    def principal(self, request: Request) -> Principal | None:
        """The caller, from a bearer token first, else from the session cookie."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return None
            return self.store.authenticate_token(credentials.strip())
        sid = self.signer.unsign(request.cookies.get(SESSION_COOKIE))
        return self.store.session(sid) if sid else None

    async def check_csrf(self, request: Request, principal: Principal) -> None:
        if principal.via != "session" or request.method in SAFE_METHODS:
            return
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            sent = (await request.form()).get(CSRF_FIELD)
        if not sent or not principal.csrf or not hmac.compare_digest(str(sent), principal.csrf):
            raise CsrfFailed("missing or wrong CSRF token")


def require(role: Role) -> Callable:
    """A FastAPI dependency: the authenticated caller, if their role allows ``role``'s actions."""

    async def dependency(request: Request) -> Principal:
        security: Security = request.app.state.security
        principal = security.principal(request)
        if principal is None:
            raise Unauthenticated("authentication required")
        await security.check_csrf(request, principal)
        if not principal.role.allows(role):
            raise Forbidden(f"{principal.role} may not do this; {role} or above needed")
        request.state.principal = principal
        return principal

    return dependency


viewer = require(Role.VIEWER)
operator = require(Role.OPERATOR)
admin = require(Role.ADMIN)
