"""The role matrix over every route in the app's route table.

Each route must declare exactly one policy (`requires(Role.x)`, `requires_recent_auth(Role.x)`,
`public()` or `metrics_access()`); then, for each route and each kind of caller, the request must be
allowed or refused exactly as declared. A route added without a policy fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.routing import Mount

from app.services.accounts.sessions import SessionPolicy, start_session
from app.services.audit import ClientInfo
from app.web.security import SESSION_COOKIE, Role, csrf_token_for_session
from tests.conftest import create_account

CALLERS = ["anonymous", "viewer", "responder", "admin"]
OPEN_POLICIES = {"public", "metrics"}


def _markers(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        marker = getattr(sub.call, "__lifeline_role__", None)
        if marker is not None:
            yield marker
        yield from _markers(sub)


def flat_routes(app: FastAPI) -> Iterator[Any]:
    """Every route as served, included routers flattened (their own dependencies merged in)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included-router contexts: app.routes is already flat
        yield from app.routes
        return
    yield from iter_route_contexts(app.routes)


def _is_api_route(route: Any) -> bool:
    return isinstance(getattr(route, "original_route", route), APIRoute)


def route_policy(route: Any) -> Role | str | None:
    """The single declared policy of a route; None when it has none (or conflicting ones)."""
    markers = set(_markers(route.dependant))
    return markers.pop() if len(markers) == 1 else None


def undeclared_routes(app: FastAPI) -> list[str]:
    missing = []
    for route in flat_routes(app):
        if isinstance(getattr(route, "original_route", route), Mount) and route.path == "/static":
            continue  # CSS, JS and images: public by design, served by StaticFiles
        if not _is_api_route(route) or route_policy(route) is None:
            methods = ",".join(sorted(route.methods or []))
            missing.append(f"{methods} {route.path}")
    return missing


def test_every_route_declares_one_policy(app: FastAPI) -> None:
    assert undeclared_routes(app) == []


def test_a_route_without_policy_is_caught(app: FastAPI) -> None:
    router = APIRouter()

    @router.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    assert undeclared_routes(app) == ["GET /forgotten"]


def _concrete_path(path: str) -> str:
    # "1" parses as an int id and is a valid name: the route's own checks answer (404, 422...).
    return re.sub(r"\{[^}]+\}", "1", path)


def _matrix(app: FastAPI) -> list[tuple[str, str, Role | str]]:
    rows = []
    for route in flat_routes(app):
        if _is_api_route(route):
            policy = route_policy(route)
            assert policy is not None, route.path
            for method in sorted(route.methods - {"HEAD"}):
                rows.append((method, route.path, policy))
    return rows


def _refused(response: Any, path: str) -> str | None:
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/login?next="):
        return "sign-in"
    if response.status_code == 401 and path.startswith("/api/"):
        return "sign-in"
    if response.status_code == 403:
        return "forbidden"
    return None


# The test shares one connection with the app's sessions through savepoints; a request that rolls
# back its own savepoint first makes SQLAlchemy warn on the test's next commit (harness, not product).
@pytest.mark.filterwarnings("ignore:nested transaction already deassociated:sqlalchemy.exc.SAWarning")
def test_role_matrix(app: FastAPI, session: Session) -> None:
    users = {
        role: create_account(session, f"matrix-{role}", role) for role in ("viewer", "responder", "admin")
    }
    failures = []
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as http:
        for method, path, policy in _matrix(app):
            for caller in CALLERS:
                http.cookies.clear()
                headers = {"Accept": "text/html"}
                if caller != "anonymous":
                    # A fresh session per request: a route like POST /logout must not end the next one.
                    raw, _ = start_session(
                        session, users[caller], client=ClientInfo(), policy=SessionPolicy()
                    )
                    session.commit()
                    session.expunge_all()  # the app may delete this row (sign-out); forget it here
                    users = {role: session.merge(user) for role, user in users.items()}
                    http.cookies.set(SESSION_COOKIE, raw)
                    headers["X-CSRF-Token"] = csrf_token_for_session(raw)
                else:
                    http.get("/login")  # the anonymous CSRF cookie, as a browser would have
                    headers["X-CSRF-Token"] = http.cookies.get("lifeline_csrf") or ""
                response = http.request(method, _concrete_path(path), headers=headers, follow_redirects=False)
                refused = _refused(response, path)
                if policy in OPEN_POLICIES:
                    expected = None
                elif caller == "anonymous":
                    expected = "sign-in"
                else:
                    expected = None if Role(caller).allows(Role(policy)) else "forbidden"
                if refused != expected:
                    failures.append(
                        f"{method} {path} as {caller}: expected {expected or 'allowed'}, got "
                        f"{response.status_code} {response.headers.get('location', '')}".rstrip()
                    )
    assert failures == []


@pytest.mark.parametrize("role", ["viewer", "responder", "admin"])
def test_bearer_tokens_only_work_on_the_api(api_client_as: Any, role: str) -> None:
    api = api_client_as(role)
    assert api.get("/api/v1/me").json()["role"] == role
    page = api.get("/account", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_matrix_covers_the_accounts_routes(app: FastAPI) -> None:
    paths = {(m, p) for m, p, _ in _matrix(app)}
    for expected in [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/audit"),
        ("GET", "/api/v1/audit"),
        ("POST", "/logout"),
        ("GET", "/login"),
        ("GET", "/healthz"),
    ]:
        assert expected in paths


def test_matrix_covers_the_credential_policy_routes(app: FastAPI) -> None:
    rows = {(m, p): policy for m, p, policy in _matrix(app)}
    assert rows[("GET", "/credential-policy")] == Role.admin
    assert rows[("POST", "/credential-policy/groups")] == Role.admin
    assert rows[("POST", "/credential-policy/groups/reset")] == Role.admin
