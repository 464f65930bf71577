"""What a signed-in person may open, read from the route table: the navigation, banners and error
pages offer only links whose page the caller's role allows (no link that answers 403).

The role of a page is the one its route declares (`requires(Role.x)`, the same marker the role
matrix checks), so the navigation cannot drift from the policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Match

from app.web.security import Role


def _markers(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        marker = getattr(sub.call, "__lifeline_role__", None)
        if marker is not None:
            yield marker
        yield from _markers(sub)


def _flat_routes(app: Any) -> Iterator[Any]:
    """Every route as served, included routers flattened with their own dependencies merged in."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # FastAPI before included-router contexts: app.routes is already flat
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


def page_role(app: Any, path: str) -> Role | str | None:
    """The declared policy of the GET route serving `path` (a Role, "public", "metrics"), None when
    no route serves it. Cached on the app: the route table does not change while it serves."""
    cache: dict[str, Role | str | None] = app.state.__dict__.setdefault("_page_roles", {})
    if path in cache:
        return cache[path]
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    found: Role | str | None = None
    for route in _flat_routes(app):
        served = getattr(route, "route", route)
        if isinstance(served, APIRoute) and served.matches(scope)[0] == Match.FULL:
            markers = set(_markers(route.dependant))
            found = markers.pop() if len(markers) == 1 else None
            break
    cache[path] = found
    return found


def can_open(request: Request, path: str) -> bool:
    """Whether the person behind `request` may open the page at `path` (False when signed out,
    unless the page is public)."""
    role = page_role(request.app, path)
    if role is None:
        return False
    if role in ("public", "metrics"):
        return True
    principal = getattr(request.state, "principal", None)
    return principal is not None and principal.role.allows(Role(role))
