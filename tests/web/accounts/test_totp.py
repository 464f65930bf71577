"""TOTP enrolment on /account/totp, admin reset, and the admins' "break-glass admins must use TOTP"
switch (issue 18)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import generate_data_key
from app.models.account import Policy, User
from app.models.audit import AuditEvent
from app.services.accounts import policies, totp
from app.services.accounts.breakglass import set_break_glass
from app.services.audit import Actor
from app.web.accounts.sso import vault_for
from app.web.security import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for_session
from tests.conftest import TEST_PASSWORD, create_account
from tests.fixtures.sso import sso_overrides
from tests.support.oidc_provider import OidcServer

DATA_KEY = generate_data_key()


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return sso_overrides(request) | {"data_key": DATA_KEY}


def _user(session: Session, username: str) -> User:
    session.expire_all()
    user = session.scalar(select(User).where(User.username_key == username))
    assert user is not None
    return user


def _actions(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _secret_on_page(html: str) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert found, html[:2000]
    return found.group(1).replace(" ", "")


def _enrol(c: TestClient) -> pyotp.TOTP:
    assert c.post("/account/totp/start", follow_redirects=False).status_code == 303
    generator = pyotp.TOTP(_secret_on_page(c.get("/account/totp").text))
    answer = c.post("/account/totp/confirm", data={"code": generator.now()}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return generator


def test_enrolment_shows_an_inline_svg_qr_and_the_key_and_needs_a_code(
    client_as: Any, session: Session, app: FastAPI
) -> None:
    c = client_as("viewer", "vera")
    assert "Set up an authenticator app" in c.get("/account").text
    page = c.get("/account/totp")
    assert page.status_code == 200 and 'id="totp-start"' in page.text
    assert c.post("/account/totp/start", follow_redirects=False).status_code == 303
    page = c.get("/account/totp")
    # The QR code is an inline SVG drawn by the server: no <img> to an outside service, no script.
    qr = re.search(r'<div class="totp-qr" id="totp-qr">(.*?)</div>', page.text, re.S)
    assert qr and qr.group(1).lstrip().startswith("<svg") and "<script" not in qr.group(1)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    secret = _secret_on_page(page.text)
    user = _user(session, "vera")
    assert not user.totp_enabled and user.totp_secret_sealed and secret not in user.totp_secret_sealed
    # The URI behind the QR code is the one for this secret.
    uri = totp.pending_uri(user, vault=vault_for(app.state.settings))
    assert uri is not None and f"secret={secret}" in uri

    wrong = c.post("/account/totp/confirm", data={"code": "000000"}, follow_redirects=False)
    assert wrong.status_code == 422 and "does not match" in wrong.text
    assert not _user(session, "vera").totp_enabled
    code = pyotp.TOTP(secret).now()
    assert c.post("/account/totp/confirm", data={"code": code}, follow_redirects=False).status_code == 303
    assert _user(session, "vera").totp_enabled
    assert [e.actor for e in _actions(session, "user.totp_enable")] == ["vera"]
    assert "Turn off" in c.get("/account/totp").text


def test_turning_totp_off_takes_a_code_or_the_password(client_as: Any, session: Session) -> None:
    c = client_as("viewer", "vera")
    generator = _enrol(c)
    refused = c.post("/account/totp/disable", data={"password": "not the password"}, follow_redirects=False)
    assert refused.status_code == 422 and _user(session, "vera").totp_enabled
    refused = c.post("/account/totp/disable", data={}, follow_redirects=False)
    assert refused.status_code == 422 and _user(session, "vera").totp_enabled
    later = generator.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))  # the next step: not a replay
    assert c.post("/account/totp/disable", data={"code": later}, follow_redirects=False).status_code == 303
    user = _user(session, "vera")
    assert not user.totp_enabled and user.totp_secret_sealed is None
    _enrol(c)
    ok = c.post("/account/totp/disable", data={"password": TEST_PASSWORD}, follow_redirects=False)
    assert ok.status_code == 303 and not _user(session, "vera").totp_enabled
    assert len(_actions(session, "user.totp_disable")) == 2


def test_an_admin_resets_a_lost_authenticator_audited(client_as: Any, session: Session) -> None:
    vera = client_as("viewer", "vera")
    _enrol(vera)
    admin = client_as("admin", "root")
    user = _user(session, "vera")
    assert "Reset TOTP" in admin.get(f"/users/{user.id}").text
    assert vera.post(f"/users/{user.id}/totp/reset", follow_redirects=False).status_code == 403
    assert admin.post(f"/users/{user.id}/totp/reset", follow_redirects=False).status_code == 303
    user = _user(session, "vera")
    assert not user.totp_enabled and user.totp_secret_sealed is None
    assert [(e.actor, e.target) for e in _actions(session, "user.totp_reset")] == [("root", "user:vera")]


def test_the_policy_switch_is_persisted_audited_and_the_setting_is_a_floor(
    client_as: Any, session: Session, app: FastAPI
) -> None:
    admin = client_as("admin", "root")
    page = admin.get("/sign-in-policy")
    assert page.status_code == 200 and "nobody has set it yet" in page.text
    assert client_as("responder").get("/sign-in-policy", follow_redirects=False).status_code == 403
    on = admin.post("/sign-in-policy/break-glass-totp", data={"enabled": "1"}, follow_redirects=False)
    assert on.status_code == 303
    session.expire_all()
    row = session.get(Policy, policies.BREAK_GLASS_TOTP)
    assert row is not None and row.enabled and row.updated_by == "root"
    assert [e.actor for e in _actions(session, "policy.break_glass_totp_on")] == ["root"]
    assert "set by root" in admin.get("/sign-in-policy").text
    admin.post("/sign-in-policy/break-glass-totp", data={"enabled": "0"})
    assert not policies.break_glass_totp(session, setting=False).enabled

    # The setting on: the page shows it on and cannot turn it off.
    app.state.settings = app.state.settings.model_copy(update={"break_glass_totp_required": True})
    page = admin.get("/sign-in-policy").text
    assert "required by the configuration" in page and 'id="break-glass-totp-toggle"' not in page
    refused = admin.post("/sign-in-policy/break-glass-totp", data={"enabled": "0"}, follow_redirects=False)
    assert refused.status_code == 409
    assert policies.break_glass_totp(session, setting=True).enabled


def _password_sign_in(c: TestClient, username: str, code: str = "") -> Any:
    c.get("/login")
    answer = c.post(
        "/login",
        data={
            "username": username,
            "password": TEST_PASSWORD,
            "code": code,
            "csrf_token": c.cookies.get(CSRF_COOKIE, ""),
        },
        follow_redirects=False,
    )
    raw = c.cookies.get(SESSION_COOKIE)
    if raw:
        c.headers["X-CSRF-Token"] = csrf_token_for_session(raw)
    return answer


def test_break_glass_admin_without_totp_is_sent_to_enrolment_before_anything_else(
    oidc_server: OidcServer, anon_client: TestClient, session: Session
) -> None:
    now = dt.datetime.now(dt.UTC)
    create_account(session, "glass", "admin")
    set_break_glass(session, _user(session, "glass"), True, actor=Actor(name="t"), now=now)
    policies.set_break_glass_totp(session, True, setting=False, actor=Actor(name="t"), now=now)
    session.commit()
    c = anon_client
    answer = _password_sign_in(c, "glass")
    assert answer.status_code == 303
    assert (
        answer.headers["location"].startswith("/account/totp?") and "required=1" in answer.headers["location"]
    )
    # Held at enrolment: every other page (and the API with the session) sends there.
    for path in ("/", "/users", "/credentials"):
        held = c.get(path, follow_redirects=False)
        assert held.status_code == 303 and held.headers["location"].startswith("/account/totp?required=1")
    assert c.get("/api/v1/me", follow_redirects=False).status_code == 403
    assert 'id="totp-required"' in c.get("/account/totp").text
    assert c.get("/reauth", params={"next": "/account/totp"}, follow_redirects=False).status_code == 200
    generator = _enrol(c)
    assert c.get("/", follow_redirects=False).status_code == 200
    # Once on it cannot be turned off while the policy holds (an admin can reset it).
    later = generator.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert c.post("/account/totp/disable", data={"code": later}, follow_redirects=False).status_code == 409
    # The next sign-in asks for the code.
    assert (
        "Enter the 6-digit code"
        in _password_sign_in(TestClient(c.app, base_url="http://testserver"), "glass").text
    )


def test_without_the_policy_a_break_glass_admin_is_not_held(
    oidc_server: OidcServer, anon_client: TestClient, session: Session
) -> None:
    create_account(session, "glass", "admin")
    set_break_glass(
        session, _user(session, "glass"), True, actor=Actor(name="t"), now=dt.datetime.now(dt.UTC)
    )
    session.commit()
    answer = _password_sign_in(anon_client, "glass")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert anon_client.get("/", follow_redirects=False).status_code == 200
