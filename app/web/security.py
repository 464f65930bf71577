"""The access policy: every route declares the role it needs, here and nowhere else.

`requires(Role.x)` is a FastAPI dependency that returns the signed-in `Principal` or refuses the
request; `public()` marks the few routes open without sign-in. A route with neither fails the
role-matrix test.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request


class Role(enum.StrEnum):
    viewer = "viewer"
    responder = "responder"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 1, "responder": 2, "admin": 3}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Principal:
    """Who is making the request: a signed-in user, or an API token acting for its owner."""

    user_id: int | None
    username: str
    role: Role
    via_token: bool = False


def requires(role: Role) -> Callable[[Request], Principal]:
    """Dependency: the request must come from a user or token with at least `role`."""

    def dependency(request: Request) -> Principal:
        # Until accounts land (issue 4) every request acts as a local admin.
        principal = Principal(user_id=None, username="local", role=Role.admin)
        request.state.principal = principal
        return principal

    dependency.__lifeline_role__ = role  # type: ignore[attr-defined]
    return dependency


def public() -> Callable[[Request], None]:
    """Dependency marking a route that needs no sign-in (/login, /healthz, static files)."""

    def dependency(request: Request) -> None:
        request.state.principal = None

    dependency.__lifeline_role__ = "public"  # type: ignore[attr-defined]
    return dependency
