"""Sign-in, sessions, CSRF, back-off, enumeration, security headers and re-authentication."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import LoginThrottle, User, WebSession
from app.services.accounts import users as accounts
from app.services.accounts.backoff import pair_key
from app.services.audit import Actor
from app.web.security import CSRF_COOKIE, SESSION_COOKIE, Principal, Role, requires_recent_auth
from tests.conftest import TEST_PASSWORD, create_account, sign_in
from tests.fixtures.accounts import Clock

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _login(http: TestClient, username: str, password: str, **extra: str) -> Any:
    if not http.cookies.get(CSRF_COOKIE):
        http.get("/login")
    data = {
        "username": username,
        "password": password,
        "csrf_token": http.cookies.get(CSRF_COOKIE, ""),
        **extra,
    }
    return http.post("/login", data=data, follow_redirects=False)


def _error(response: Any) -> str:
    match = re.search(r'id="login-error">([^<]*)<', response.text)
    return match.group(1) if match else ""


# ---------------------------------------------------------------- sign-in and sign-out


def test_pages_redirect_to_sign_in_and_back(anon_client: TestClient, session: Session) -> None:
    create_account(session, "alice", "viewer")
    response = anon_client.get("/account?tab=tokens", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account%3Ftab%3Dtokens"
    assert 'value="/account?tab=tokens"' in anon_client.get(response.headers["location"]).text
    signed_in = _login(anon_client, "alice", TEST_PASSWORD, next="/account?tab=tokens")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/account?tab=tokens"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert anon_client.get("/account").status_code == 200


def test_htmx_and_api_requests_are_refused_without_redirect_pages(anon_client: TestClient) -> None:
    htmx = anon_client.get("/users", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login?next=/users"
    api = anon_client.get("/api/v1/audit")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    assert "detail" in api.json()


def test_next_is_never_another_site(anon_client: TestClient, session: Session) -> None:
    create_account(session, "alice", "viewer")
    for evil in ["https://evil.example/", "//evil.example/x", "/\\evil.example"]:
        anon_client.cookies.clear()
        response = _login(anon_client, "alice", TEST_PASSWORD, next=evil)
        assert response.headers["location"] == "/", evil


def test_secure_cookie_over_https(app: FastAPI, session: Session) -> None:
    create_account(session, "alice", "viewer")
    with TestClient(app, base_url="https://testserver") as https:
        response = _login(https, "alice", TEST_PASSWORD)
        assert "Secure" in response.headers["set-cookie"]
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_sign_out_ends_the_session_server_side(client_as: Any, session: Session) -> None:
    viewer = client_as("viewer", "alice")
    raw = viewer.cookies.get(SESSION_COOKIE)
    response = viewer.post("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?signed_out=1"
    assert session.scalar(select(WebSession).join(User).where(User.username == "alice")) is None
    # Replaying the old cookie does not work either.
    viewer.cookies.set(SESSION_COOKIE, raw or "")
    assert (
        viewer.get("/account", follow_redirects=False).headers["location"].startswith("/login?next=/account")
    )


def test_new_session_on_every_sign_in(client_as: Any, session: Session) -> None:
    viewer = client_as("viewer", "alice")
    first = viewer.cookies.get(SESSION_COOKIE)
    _login(viewer, "alice", TEST_PASSWORD, csrf_token=viewer.headers["X-CSRF-Token"])
    assert viewer.cookies.get(SESSION_COOKIE) != first
    assert len(session.scalars(select(WebSession).join(User).where(User.username == "alice")).all()) == 1


# ---------------------------------------------------------------- no account enumeration


def test_unknown_user_and_wrong_password_look_the_same(
    anon_client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_account(session, "alice", "viewer")
    calls: list[str] = []

    class SpyHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
            calls.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(accounts, "password_hasher", SpyHasher(time_cost=1, memory_cost=1024, parallelism=1))
    wrong = _login(anon_client, "alice", "not the password")
    unknown = _login(anon_client, "mallory", "not the password")
    create_account(session, "dora", "viewer")
    accounts.set_disabled(
        session,
        session.scalars(select(User).where(User.username == "dora")).one(),
        disabled=True,
        actor=Actor(name="test"),
    )
    session.commit()
    disabled = _login(anon_client, "dora", TEST_PASSWORD)
    assert wrong.status_code == unknown.status_code == disabled.status_code == 401
    assert _error(wrong) == _error(unknown) == _error(disabled) == "Incorrect username or password."
    # The unknown name still costs one Argon2 verification (against a dummy hash).
    assert len(calls) == 3


# ---------------------------------------------------------------- back-off


def test_back_off_per_account(anon_client: TestClient, session: Session, clock: Clock) -> None:
    create_account(session, "alice", "viewer")
    for _ in range(3):
        assert _login(anon_client, "alice", "wrong password!").status_code == 401
    blocked = _login(anon_client, "alice", TEST_PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "2"
    assert "Too many failed attempts" in blocked.text
    clock.advance(seconds=3)
    assert _login(anon_client, "alice", "wrong password!").status_code == 401
    # The delay doubles with each further failure.
    assert _login(anon_client, "alice", TEST_PASSWORD).headers["retry-after"] == "4"
    clock.advance(seconds=5)
    assert _login(anon_client, "alice", TEST_PASSWORD).status_code == 303
    row = session.scalar(
        select(LoginThrottle).where(
            LoginThrottle.scope == "pair", LoginThrottle.key == pair_key("alice", "testclient")
        )
    )
    assert row is None  # success clears the (account, address) counter


def test_back_off_is_the_same_for_unknown_accounts(anon_client: TestClient, clock: Clock) -> None:
    for _ in range(3):
        _login(anon_client, "nobody", "wrong password!")
    assert _login(anon_client, "nobody", "wrong password!").status_code == 429


def test_back_off_per_client_address(anon_client: TestClient, session: Session, clock: Clock) -> None:
    create_account(session, "alice", "viewer")
    # Nine failures spread over names (three each, under the per-account limit only for the last).
    for index in range(9):
        _login(anon_client, f"guess{index}", "wrong password!")
    response = _login(anon_client, "alice", TEST_PASSWORD)
    assert response.status_code == 429
    rows = {(r.scope, r.key): r.failures for r in session.scalars(select(LoginThrottle))}
    assert rows[("address", "testclient")] == 9


def test_back_off_is_forgotten_after_the_window(
    anon_client: TestClient, session: Session, clock: Clock
) -> None:
    create_account(session, "alice", "viewer")
    for _ in range(2):
        _login(anon_client, "alice", "wrong password!")
    clock.advance(minutes=16)
    _login(anon_client, "alice", "wrong password!")
    row = session.scalar(
        select(LoginThrottle).where(
            LoginThrottle.scope == "pair", LoginThrottle.key == pair_key("alice", "testclient")
        )
    )
    assert row is not None and row.failures == 1


# ---------------------------------------------------------------- session expiry


def test_idle_timeout(client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer")
    clock.advance(minutes=59)
    assert viewer.get("/account").status_code == 200
    clock.advance(minutes=59)  # active a minute before: still in
    assert viewer.get("/account").status_code == 200
    clock.advance(minutes=61)
    response = viewer.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account&expired=1"
    assert "Your session ended" in viewer.get(response.headers["location"]).text


def test_absolute_lifetime(client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer")
    for _ in range(14):  # active every 50 minutes: 11 h 40 min
        clock.advance(minutes=50)
        assert viewer.get("/account").status_code == 200
    clock.advance(minutes=25)  # 12 h 05 min after sign-in
    assert viewer.get("/account", follow_redirects=False).status_code == 303


def test_expiry_settings_are_used(app: FastAPI, client_as: Any, clock: Clock) -> None:
    app.state.settings = app.state.settings.model_copy(update={"session_idle_minutes": 5})
    viewer = client_as("viewer")
    clock.advance(minutes=6)
    assert viewer.get("/account", follow_redirects=False).status_code == 303


def test_disabling_an_account_ends_its_sessions(client_as: Any, client: TestClient, session: Session) -> None:
    viewer = client_as("viewer", "alice")
    alice = session.scalars(select(User).where(User.username == "alice")).one()
    assert client.post(f"/users/{alice.id}/disable", follow_redirects=False).status_code == 303
    assert viewer.get("/account", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- CSRF


def test_csrf_rejected_without_token_and_accepted_with_it(client_as: Any) -> None:
    viewer = client_as("viewer")
    token = viewer.headers.pop("X-CSRF-Token")
    missing = viewer.post("/account/tokens", data={"name": "ci"})
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = viewer.post("/account/tokens", data={"name": "ci", "csrf_token": "0" * 64})
    assert wrong.status_code == 403
    form = viewer.post("/account/tokens", data={"name": "ci", "csrf_token": token})
    assert form.status_code == 201
    htmx = viewer.post(
        "/account/tokens", data={"name": "ci2"}, headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert htmx.status_code == 201
    assert viewer.post("/logout", headers={"HX-Request": "true"}).status_code == 403


def test_csrf_token_is_rendered_for_forms_and_htmx(client_as: Any) -> None:
    viewer = client_as("viewer")
    token = viewer.headers["X-CSRF-Token"]
    page = viewer.get("/account").text
    assert f'name="csrf_token" value="{token}"' in page
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page


def test_login_form_needs_the_pre_session_csrf_cookie(anon_client: TestClient, session: Session) -> None:
    create_account(session, "alice", "viewer")
    anon_client.get("/login")
    response = anon_client.post("/login", data={"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 403


def test_bearer_api_calls_need_no_csrf_but_cookie_api_calls_do(
    api_client_as: Any, client_as: Any, session: Session
) -> None:
    api = api_client_as("viewer")
    token_id = api.get("/api/v1/tokens").json()[0]["id"]
    assert api.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    viewer = client_as("viewer")
    viewer.post("/account/tokens", data={"name": "mine"})
    mine = viewer.get("/api/v1/tokens").json()[0]["id"]
    csrf = viewer.headers.pop("X-CSRF-Token")
    assert viewer.delete(f"/api/v1/tokens/{mine}").status_code == 403
    assert viewer.delete(f"/api/v1/tokens/{mine}", headers={"X-CSRF-Token": csrf}).status_code == 200


# ---------------------------------------------------------------- security headers


@pytest.mark.parametrize("path", ["/login", "/account", "/static/css/app.css", "/no-such-page", "/api/v1/me"])
def test_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src is not None and script_src.group(1) == "'self'"
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


def test_templates_have_no_inline_scripts_or_handlers() -> None:
    """The CSP forbids them, so a template that uses one is broken in the browser."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for match in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{template.relative_to(TEMPLATES)}: inline {match.group(0)}")
        for match in re.finditer(r"\son[a-z]+\s*=\s*[\"']", text):
            offenders.append(f"{template.relative_to(TEMPLATES)}: handler {match.group(0).strip()}")
        if "javascript:" in text or "hx-on" in text:
            offenders.append(f"{template.relative_to(TEMPLATES)}: javascript: URL or hx-on")
    assert offenders == []


# ---------------------------------------------------------------- re-authentication


def test_reauth_window(client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer")
    clock.advance(minutes=4)
    assert viewer.post("/account/tokens", data={"name": "a"}).status_code == 201
    clock.advance(minutes=2)
    stale = viewer.post(
        "/account/tokens",
        data={"name": "b"},
        headers={"Referer": "http://testserver/account"},
        follow_redirects=False,
    )
    assert stale.status_code == 303 and stale.headers["location"] == "/reauth?next=/account"
    htmx = viewer.post(
        "/account/tokens",
        data={"name": "b"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/account"},
    )
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/reauth?next=/account"
    assert "Confirm your password" in viewer.get("/reauth?next=/account").text
    bad = viewer.post("/reauth", data={"password": "not it at all", "next": "/account"})
    assert bad.status_code == 401
    good = viewer.post(
        "/reauth", data={"password": TEST_PASSWORD, "next": "/account"}, follow_redirects=False
    )
    assert good.status_code == 303 and good.headers["location"] == "/account"
    assert viewer.post("/account/tokens", data={"name": "b"}).status_code == 201
    clock.advance(minutes=5)
    assert viewer.post("/account/tokens", data={"name": "c"}, follow_redirects=False).status_code == 303


def test_api_tokens_bypass_reauth_and_json_callers_get_401(
    app: FastAPI, api_client_as: Any, client_as: Any, clock: Clock
) -> None:
    @app.post("/api/v1/test-sensitive")
    def sensitive(principal: Principal = Depends(requires_recent_auth(Role.responder))) -> dict[str, str]:  # noqa: B008
        return {"who": principal.username}

    api = api_client_as("responder")
    clock.advance(hours=1)
    assert api.post("/api/v1/test-sensitive").json()["who"].startswith("api-responder")
    browser = client_as("responder")
    clock.advance(minutes=6)
    response = browser.post("/api/v1/test-sensitive")
    assert response.status_code == 401
    assert response.json()["reauth_url"].startswith("/reauth")
    assert api_client_as("viewer").post("/api/v1/test-sensitive").status_code == 403


def test_metrics_needs_the_token_once_it_is_set(app: FastAPI, anon_client: TestClient) -> None:
    assert anon_client.get("/metrics").status_code == 200
    app.state.settings = app.state.settings.model_copy(update={"metrics_token": SecretStr("s3cret-metrics")})
    refused = anon_client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert anon_client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = anon_client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")


def test_sign_in_helper_gives_csrf_header(anon_client: TestClient, session: Session) -> None:
    create_account(session, "alice", "responder")
    sign_in(anon_client, "alice")
    assert anon_client.get("/api/v1/me").json() == {
        "username": "alice",
        "role": "responder",
        "via_token": False,
    }


def test_credential_downloads_need_a_recent_password(
    client_as: Any, api_client_as: Any, clock: Clock
) -> None:
    responder = client_as("responder")
    clock.advance(minutes=6)
    for artifact in ("kubeconfig", "bundle"):
        response = responder.get(f"/credentials/1/{artifact}", follow_redirects=False)
        assert response.status_code == 303
        # Back to the credential's page, which starts the download (never the file URL itself,
        # which a browser would save as the confirmation page).
        assert response.headers["location"] == f"/reauth?next=/credentials/1%3Fdownload%3D{artifact}"
    responder.post("/reauth", data={"password": TEST_PASSWORD})
    assert responder.get("/credentials/1/kubeconfig").status_code == 404  # past the check: no such credential
    # An API token is its own proof.
    assert api_client_as("responder").get("/api/v1/credentials/1/kubeconfig").status_code == 404
