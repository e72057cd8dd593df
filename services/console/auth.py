"""Users, API tokens and browser sessions, stored in Redis with only hashes of the secrets.

Passwords are hashed with argon2id (slow on purpose: a leaked Redis dump must not give them
away). API tokens and session ids are 256-bit random values, so one SHA-256 is enough to make a
dump useless; the raw value exists only in the response that creates it and in the client.
A principal's role is read from its user on every request, so demoting or deleting a user
takes effect at once for its sessions and tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.console.errors import Conflict, InvalidRequest, NotFound
from services.console.roles import Role

TOKEN_PREFIX = "mci_"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class User:
    name: str
    role: Role
    created_at_ms: int

    def public(self) -> dict:
        return {"name": self.name, "role": str(self.role), "created_at_ms": self.created_at_ms}


@dataclass
class Principal:
    """Who is making a request, and how they proved it."""

    user: User
    via: str  # "session" or "token"
    csrf: str | None = None  # the session's CSRF token; None for bearer tokens

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> Role:
        return self.user.role


@dataclass
class TokenInfo:
    id: str
    user: str
    label: str
    created_at_ms: int
    sha256: str

    def public(self) -> dict:
        out = asdict(self)
        out.pop("sha256")
        return out


class AuthStore:
    """Users, tokens and sessions under ``<prefix>console:``."""

    def __init__(self, client, prefix: str, hasher: PasswordHasher | None = None) -> None:
        self.r = client
        self.p = f"{prefix}console:"
        self.hasher = hasher or PasswordHasher()

    # users ---------------------------------------------------------------------------------------
    def add_user(self, name: str, role: Role | str, password: str | None = None) -> tuple[User, str]:
        """Creates a user; returns it and its password (generated when not given)."""
        if not _NAME.match(name):
            raise InvalidRequest("user names are 1-64 characters of letters, digits, _ . @ -")
        try:
            role = Role(role)
        except ValueError:
            raise InvalidRequest(f"unknown role {role!r}; one of {[r.value for r in Role]}") from None
        password = password or secrets.token_urlsafe(18)
        if len(password) < 8:
            raise InvalidRequest("passwords have at least 8 characters")
        user = User(name=name, role=role, created_at_ms=now_ms())
        record = {**user.public(), "password_hash": self.hasher.hash(password)}
        if not self.r.hsetnx(f"{self.p}users", name, json.dumps(record)):
            raise Conflict(f"user {name!r} exists")
        return user, password

    def _raw_user(self, name: str) -> dict | None:
        raw = self.r.hget(f"{self.p}users", name)
        return json.loads(raw) if raw else None

    def get_user(self, name: str) -> User | None:
        raw = self._raw_user(name)
        if raw is None:
            return None
        return User(name=raw["name"], role=Role(raw["role"]), created_at_ms=raw["created_at_ms"])

    def list_users(self) -> list[User]:
        return sorted((u for u in (self.get_user(n.decode()) for n in self.r.hkeys(f"{self.p}users")) if u), key=lambda u: u.name)

    def count_users(self) -> int:
        return int(self.r.hlen(f"{self.p}users"))

    def set_role(self, name: str, role: Role | str) -> User:
        raw = self._raw_user(name)
        if raw is None:
            raise NotFound(f"no user {name!r}")
        try:
            raw["role"] = str(Role(role))
        except ValueError:
            raise InvalidRequest(f"unknown role {role!r}") from None
        self.r.hset(f"{self.p}users", name, json.dumps(raw))
        return self.get_user(name)  # type: ignore[return-value]

    def delete_user(self, name: str) -> None:
        if not self.r.hdel(f"{self.p}users", name):
            raise NotFound(f"no user {name!r}")
        for token in self.list_tokens(name):
            self.revoke_token(token.id)

    def verify_password(self, name: str, password: str) -> User | None:
        raw = self._raw_user(name)
        if raw is None:
            # Same work as a real check, so response time does not reveal which names exist.
            try:
                self.hasher.verify(self._dummy_hash(), password)
            except (VerificationError, InvalidHashError):
                pass
            return None
        try:
            self.hasher.verify(raw["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        return self.get_user(name)

    _dummy: str | None = None

    def _dummy_hash(self) -> str:
        if AuthStore._dummy is None:
            AuthStore._dummy = self.hasher.hash(secrets.token_hex(8))
        return AuthStore._dummy

    # brute-force guard --------------------------------------------------------------------------
    def locked(self, name: str, max_failures: int) -> bool:
        return int(self.r.get(f"{self.p}login_failures:{name}") or 0) >= max_failures

    def login_failed(self, name: str, window_s: int) -> int:
        """Counts a failed login for ``name``; the count expires ``window_s`` after the first one."""
        key = f"{self.p}login_failures:{name}"
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, window_s, nx=True)
        return int(pipe.execute()[0])

    def login_succeeded(self, name: str) -> None:
        self.r.delete(f"{self.p}login_failures:{name}")

    # tokens --------------------------------------------------------------------------------------
    def create_token(self, user: str, label: str = "") -> tuple[TokenInfo, str]:
        """Creates an API token for ``user``; the raw token is returned once and never stored."""
        if self.get_user(user) is None:
            raise NotFound(f"no user {user!r}")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(id=secrets.token_hex(6), user=user, label=label[:100], created_at_ms=now_ms(), sha256=sha256(raw))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(f"{self.p}tokens", info.id, json.dumps(asdict(info)))
        pipe.set(f"{self.p}token:{info.sha256}", info.id)
        pipe.execute()
        return info, raw

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        infos = [TokenInfo(**json.loads(v)) for v in self.r.hvals(f"{self.p}tokens")]
        return sorted((t for t in infos if user is None or t.user == user), key=lambda t: t.created_at_ms)

    def revoke_token(self, token_id: str) -> TokenInfo:
        raw = self.r.hget(f"{self.p}tokens", token_id)
        if raw is None:
            raise NotFound(f"no token {token_id!r}")
        info = TokenInfo(**json.loads(raw))
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(f"{self.p}tokens", token_id)
        pipe.delete(f"{self.p}token:{info.sha256}")
        pipe.execute()
        return info

    def authenticate_token(self, raw: str) -> Principal | None:
        token_id = self.r.get(f"{self.p}token:{sha256(raw)}")
        if token_id is None:
            return None
        info = self.r.hget(f"{self.p}tokens", token_id)
        user = self.get_user(json.loads(info)["user"]) if info else None
        return Principal(user=user, via="token") if user else None

    # sessions ------------------------------------------------------------------------------------
    def create_session(self, user: User, ttl_s: int) -> tuple[str, str]:
        """Starts a session; returns (session id, CSRF token). Only the id's hash is a key."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        value = json.dumps({"user": user.name, "csrf": csrf, "created_at_ms": now_ms()})
        self.r.set(f"{self.p}session:{sha256(sid)}", value, ex=ttl_s)
        return sid, csrf

    def session(self, sid: str) -> Principal | None:
        raw = self.r.get(f"{self.p}session:{sha256(sid)}")
        if raw is None:
            return None
        data = json.loads(raw)
        user = self.get_user(data["user"])
        return Principal(user=user, via="session", csrf=data["csrf"]) if user else None

    def end_session(self, sid: str) -> None:
        self.r.delete(f"{self.p}session:{sha256(sid)}")
