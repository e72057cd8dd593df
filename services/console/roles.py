"""Roles and what they may do: each role can do everything the one before it can."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    """Reads models, versions, events, audit."""
    OPERATOR = "operator"
    """Also acts: trigger updates, approve, reject, roll back, change strategy and policy."""
    ADMIN = "admin"
    """Also manages users and API tokens."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: "Role") -> bool:
        """Whether this role may do what ``needed`` may.

        >>> Role.ADMIN.allows(Role.OPERATOR), Role.VIEWER.allows(Role.OPERATOR)
        (True, False)
        """
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
