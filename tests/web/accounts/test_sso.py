"""Single sign-on against a real OpenID provider (oidc-provider on Node, loopback) (issue 18)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.integrations.vault import generate_data_key
from app.models.account import User, WebSession
from app.models.audit import AuditEvent
from app.models.notification import NotificationEvent
from app.services.accounts import totp
from app.services.accounts.breakglass import set_break_glass
from app.services.accounts.tokens import create_token
from app.services.accounts.users import set_disabled
from app.services.audit import Actor
from app.web.accounts.sso import vault_for
from app.web.security import SESSION_COOKIE, csrf_token_for_session
from tests.conftest import TEST_PASSWORD, create_account
from tests.fixtures.sso import TEST_ORIGIN, sso_overrides, sso_sign_in
from tests.support.oidc_provider import OidcServer, idp_login

MakeClient = Callable[[], TestClient]
DATA_KEY = generate_data_key()


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return sso_overrides(request) | {"data_key": DATA_KEY}


def _user(session: Session, username: str) -> User:
    session.expire_all()
    user = session.scalar(select(User).where(User.username_key == username))
    assert user is not None
    return user


def _password_sign_in(c: TestClient, username: str, code: str = "") -> httpx.Response:
    c.get("/login")
    return c.post(
        "/login",
        data={
            "username": username,
            "password": TEST_PASSWORD,
            "code": code,
            "csrf_token": c.cookies.get("lifeline_csrf", ""),
        },
        follow_redirects=False,
    )


def test_sign_in_creates_sso_accounts_with_roles_from_groups(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    for person, role in (("alice", "admin"), ("bob", "responder"), ("carol", "viewer")):
        c = sso_client()
        answer = sso_sign_in(c, person)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/account"
        assert c.get("/api/v1/me", headers={"accept": "application/json"}).json()["role"] == role
        user = _user(session, person)
        assert user.role == role and user.is_sso and user.password_hash is None
    # An SSO account has no password to sign in with.
    assert _password_sign_in(sso_client(), "alice").status_code == 401


def test_sign_in_page_offers_sso_first(oidc_server: OidcServer, anon_client: TestClient) -> None:
    page = anon_client.get("/login").text
    assert page.index('id="sso-sign-in"') < page.index('name="password"')
    assert "did not answer" not in page


def test_person_in_no_mapped_group_is_refused(oidc_server: OidcServer, sso_client: MakeClient) -> None:
    answer = sso_sign_in(sso_client(), "dave")
    assert answer.status_code == 403
    assert "in no group Lifeline maps to a role" in answer.text


def test_group_removed_at_the_provider_takes_the_role_away_at_next_sign_in(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    assert sso_sign_in(sso_client(), "bob").status_code == 303
    assert _user(session, "bob").role == "responder"
    oidc_server.set_groups("bob", ["lifeline-viewers"])
    try:
        c = sso_client()
        assert sso_sign_in(c, "bob").status_code == 303
        assert _user(session, "bob").role == "viewer"
        assert c.get("/api/v1/me").json()["role"] == "viewer"
        oidc_server.set_groups("bob", [])
        assert sso_sign_in(sso_client(), "bob").status_code == 403
    finally:
        oidc_server.set_groups("bob", ["lifeline-operators"])
    change = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.role_change")).all()
    assert [(e.details["from"], e.details["to"]) for e in change] == [("responder", "viewer")]


def test_disabled_sso_user_loses_sessions_and_tokens_and_cannot_sign_in(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    c = sso_client()
    assert sso_sign_in(c, "carol").status_code == 303
    user = _user(session, "carol")
    raw, _ = create_token(session, user, name="ci", expires_in_days=None, actor=Actor(name="t"))
    session.commit()
    assert c.get("/api/v1/me").status_code == 200
    set_disabled(session, user, disabled=True, actor=Actor(name="admin", role="admin"))
    session.commit()
    assert c.get("/api/v1/me").status_code == 401
    assert c.get("/api/v1/me", headers={"authorization": f"Bearer {raw}"}).status_code == 401
    answer = sso_sign_in(sso_client(), "carol")
    assert answer.status_code == 403 and "disabled" in answer.text


def test_replayed_state_is_refused(oidc_server: OidcServer, sso_client: MakeClient) -> None:
    c = sso_client()
    start = c.get("/sso/start", follow_redirects=False)
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        back = idp_login(idp, start.headers["location"], "alice", stop_at=TEST_ORIGIN)
    parts = urlsplit(back)
    callback = f"{parts.path}?{parts.query}"
    c.cookies.set("lifeline_sso", parse_qs(parts.query)["state"][0], path="/sso/")
    assert c.get(callback, follow_redirects=False).status_code == 303
    c.cookies.set("lifeline_sso", parse_qs(parts.query)["state"][0], path="/sso/")
    again = c.get(callback, follow_redirects=False)
    assert again.status_code == 403
    assert "already used or is unknown" in again.text


def test_state_from_another_browser_is_refused(oidc_server: OidcServer, sso_client: MakeClient) -> None:
    victim, attacker = sso_client(), sso_client()
    start = attacker.get("/sso/start", follow_redirects=False)
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        back = idp_login(idp, start.headers["location"], "alice", stop_at=TEST_ORIGIN)
    parts = urlsplit(back)
    answer = victim.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert answer.status_code == 403 and "not started in this browser" in answer.text


def test_expired_id_token_is_refused_with_a_clear_page(
    oidc_server: OidcServer, sso_client: MakeClient, app: FastAPI
) -> None:
    # The ID token lives an hour at this provider; Lifeline's clock is two hours on.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    app.state.clock = lambda: later
    c = sso_client()
    start = c.get("/sso/start", follow_redirects=False)
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        back = idp_login(idp, start.headers["location"], "alice", stop_at=TEST_ORIGIN)
    parts = urlsplit(back)
    answer = c.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert answer.status_code == 403
    assert "ID token has expired" in answer.text
    assert "lifeline_session" not in c.cookies


def test_provider_stopped_mid_session(
    own_oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    signed_in = sso_client()
    assert sso_sign_in(signed_in, "alice").status_code == 303
    create_account(session, "glass", "admin")
    set_break_glass(
        session, _user(session, "glass"), True, actor=Actor(name="t"), now=dt.datetime.now(dt.UTC)
    )
    create_account(session, "plain", "admin")
    session.commit()
    own_oidc_server.stop()

    # The existing session does not depend on the IdP.
    assert signed_in.get("/account").status_code == 200
    # A new SSO sign-in fails with the plain message.
    newcomer = sso_client()
    page = newcomer.get("/login").text
    assert "Your identity provider did not answer; break-glass accounts can still sign in." in page
    answer = newcomer.get("/sso/start", follow_redirects=False)
    assert answer.status_code == 503
    assert "Your identity provider did not answer; break-glass accounts can still sign in." in answer.text
    # A break-glass account still signs in; other local accounts do not.
    assert _password_sign_in(sso_client(), "glass").status_code == 303
    refused = _password_sign_in(sso_client(), "plain")
    assert refused.status_code == 401 and "Only break-glass accounts" in refused.text


def test_break_glass_sign_in_is_highlighted_and_announced(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    create_account(session, "glass", "admin")
    set_break_glass(
        session, _user(session, "glass"), True, actor=Actor(name="t"), now=dt.datetime.now(dt.UTC)
    )
    session.commit()
    assert _password_sign_in(sso_client(), "glass").status_code == 303
    session.expire_all()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.break_glass_sign_in")).one()
    assert event.actor == "glass"
    note = session.scalars(
        select(NotificationEvent).where(NotificationEvent.kind == "account.break_glass")
    ).one()
    assert "glass" in note.title


def test_totp_required_for_break_glass_admin(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session, app: FastAPI
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"break_glass_totp_required": True})
    now = dt.datetime.now(dt.UTC)
    create_account(session, "glass", "admin")
    user = _user(session, "glass")
    set_break_glass(session, user, True, actor=Actor(name="t"), now=now)
    session.commit()
    # No TOTP yet: the password sign-in lands at enrolment (tests/web/accounts/test_totp.py holds it there).
    held = _password_sign_in(sso_client(), "glass")
    assert held.status_code == 303 and held.headers["location"].startswith("/account/totp?")

    vault = vault_for(app.state.settings)
    uri = totp.start_enrolment(session, user, vault=vault)
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    assert len(secret) >= 23  # >= 112 bits
    assert DATA_KEY not in uri and secret not in (user.totp_secret_sealed or "")
    generator = pyotp.TOTP(secret)
    past = now - dt.timedelta(seconds=60)
    totp.confirm_enrolment(session, user, generator.at(past), vault=vault, actor=Actor(name="t"), now=past)
    session.commit()

    assert "Enter the 6-digit code" in _password_sign_in(sso_client(), "glass").text
    assert _password_sign_in(sso_client(), "glass", "000000").status_code == 401
    code = generator.now()
    assert _password_sign_in(sso_client(), "glass", code).status_code == 303
    # The same code twice: refused (no replay within its 30 seconds).
    replay = _password_sign_in(sso_client(), "glass", code)
    assert replay.status_code == 401 and "already used" in replay.text


def test_admin_marks_a_local_account_break_glass(client: TestClient, session: Session) -> None:
    create_account(session, "glass", "responder")
    user = _user(session, "glass")
    page = client.get(f"/users/{user.id}").text
    assert "Mark as break-glass" in page
    assert client.post(f"/users/{user.id}/break-glass", data={"allowed": "1"}).status_code in (200, 303)
    assert _user(session, "glass").break_glass
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.break_glass_on")).all()
    assert [e.actor for e in events] == ["admin"]


def _signed_in_with_idp(c: TestClient, user: str, idp: httpx.Client, next_path: str = "/account") -> None:
    """An SSO sign-in that keeps the provider's cookies in `idp` (a browser's IdP session)."""
    start = c.get("/sso/start", params={"next": next_path}, follow_redirects=False)
    back = idp_login(idp, start.headers["location"], user, stop_at=TEST_ORIGIN)
    parts = urlsplit(back)
    assert c.get(f"{parts.path}?{parts.query}", follow_redirects=False).status_code == 303
    c.headers["X-CSRF-Token"] = csrf_token_for_session(c.cookies.get(SESSION_COOKIE, ""))


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_sign_out_sends_sso_users_to_the_idp_end_session_endpoint(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    c = sso_client()
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        _signed_in_with_idp(c, "alice", idp)
        sealed = session.scalars(select(WebSession.id_token_sealed)).one()
        assert sealed and sealed.count(".") != 2  # stored sealed, not as the JWT itself
        answer = c.post("/logout", follow_redirects=False)
        assert answer.status_code == 303
        # The Lifeline session is over.
        assert session.scalars(select(WebSession)).all() == []
        assert c.get("/account", follow_redirects=False).headers["location"].startswith("/login")
        discovery = httpx.get(oidc_server.issuer + "/.well-known/openid-configuration").json()
        location = answer.headers["location"]
        assert location.startswith(discovery["end_session_endpoint"] + "?")
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert params["post_logout_redirect_uri"] == f"{TEST_ORIGIN}/login?signed_out=1"
        assert params["client_id"] == "lifeline"
        hint = _jwt_claims(params["id_token_hint"])
        assert hint["sub"] == "alice" and hint["aud"] == "lifeline" and hint["iss"] == oidc_server.issuer
        # The provider accepts it: its sign-out confirmation, then back to Lifeline's sign-in page.
        confirm = idp.get(location)
        assert confirm.status_code == 200, confirm.text[:500]
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', confirm.text)
        action = re.search(r'action="([^"]+)"', confirm.text)
        assert xsrf and action, confirm.text[:500]
        done = idp.post(confirm.url.join(action.group(1)), data={"xsrf": xsrf.group(1), "logout": "yes"})
        assert (
            done.status_code in (302, 303) and done.headers["location"] == f"{TEST_ORIGIN}/login?signed_out=1"
        )
        # The IdP session is over too: the next sign-in asks for the login again.
        start = c.get("/sso/start", follow_redirects=False)
        first = idp.get(start.headers["location"])
        again = idp.get(first.url.join(first.headers["location"]))
        assert 'name="prompt" value="login"' in again.text
    page = c.get("/login?signed_out=1").text
    assert "You are signed out." in page
    assert [
        e.details for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_out"))
    ] == [{"idp_logout": True}]


def test_sign_out_of_a_break_glass_account_stays_in_lifeline(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    create_account(session, "glass", "admin")
    set_break_glass(
        session, _user(session, "glass"), True, actor=Actor(name="t"), now=dt.datetime.now(dt.UTC)
    )
    session.commit()
    c = sso_client()
    assert _password_sign_in(c, "glass").status_code == 303
    c.headers["X-CSRF-Token"] = csrf_token_for_session(c.cookies.get(SESSION_COOKIE, ""))
    answer = c.post("/logout", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?signed_out=1"


def _needs_reauth(c: TestClient) -> bool:
    answer = c.post("/account/tokens", data={"name": "ci"}, follow_redirects=False)
    return answer.status_code == 303 and answer.headers["location"].startswith("/reauth")


def test_sso_reauth_needs_a_fresh_idp_sign_in_and_returns_to_the_action(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session, app: FastAPI
) -> None:
    c = sso_client()
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        _signed_in_with_idp(c, "alice", idp)
        session.execute(update(WebSession).values(reauth_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        session.commit()
        assert _needs_reauth(c)
        reauth_page = c.get("/reauth", params={"next": "/account"}).text
        assert 'id="sso-reauth"' in reauth_page
        # an SSO account has no password: no page asks for one
        assert "Confirm it is you" in reauth_page and "password" not in reauth_page.lower()
        hint = c.get("/account").text
        assert "Sign in again with your identity provider" in hint and "Confirm your password" not in hint

        # An IdP that answers from its own session (ignores max_age=0 / prompt=login): the ID token's
        # auth_time is the sign-in of five minutes before Lifeline asked, or missing. Both refused.
        real = dt.datetime.now(dt.UTC)
        app.state.clock = lambda: real + dt.timedelta(minutes=5)
        for lax_params, message in (
            ({"max_age": "86400"}, "did not ask for your password again"),
            ({}, "did not say when you signed in"),
        ):
            start = c.get("/sso/reauth", params={"next": "/account"}, follow_redirects=False)
            url = urlsplit(start.headers["location"])
            query = parse_qs(url.query)
            assert query["max_age"] == ["0"] and query["prompt"] == ["login"]
            lax = {k: v[0] for k, v in query.items() if k not in ("max_age", "prompt")} | lax_params
            lax_url = f"{url.scheme}://{url.netloc}{url.path}?{httpx.QueryParams(lax)}"
            back = urlsplit(idp_login(idp, lax_url, "alice", stop_at=TEST_ORIGIN))
            refused = c.get(f"{back.path}?{back.query}", follow_redirects=False)
            assert refused.status_code == 403
            assert message in refused.text, re.findall(r'sso-error">([^<]*)', refused.text)
        app.state.clock = lambda: dt.datetime.now(dt.UTC)
        assert _needs_reauth(c)

        # A fresh sign-in at the IdP (max_age=0): auth_time is now; back to where the person was going.
        start = c.get("/sso/reauth", params={"next": "/account"}, follow_redirects=False)
        first = idp.get(start.headers["location"])
        prompt = idp.get(first.url.join(first.headers["location"]))
        assert 'name="prompt" value="login"' in prompt.text  # the provider asked again
        back = urlsplit(idp_login(idp, start.headers["location"], "alice", stop_at=TEST_ORIGIN))
        done = c.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/account"
        assert not _needs_reauth(c)


def test_sso_reauth_as_someone_else_is_refused(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    c = sso_client()
    with httpx.Client(follow_redirects=False, timeout=10) as idp:
        _signed_in_with_idp(c, "alice", idp)
        session.execute(update(WebSession).values(reauth_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        session.commit()
        start = c.get("/sso/reauth", params={"next": "/account"}, follow_redirects=False)
        back = urlsplit(idp_login(idp, start.headers["location"], "bob", stop_at=TEST_ORIGIN))
        refused = c.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert refused.status_code == 403 and "as someone else" in refused.text
        assert _needs_reauth(c)


def test_sso_account_page_says_the_password_is_managed_by_the_identity_provider(
    oidc_server: OidcServer, sso_client: MakeClient, session: Session
) -> None:
    """Issue 12: an SSO account was shown a "Change your password" form it could never use."""
    c = sso_client()
    assert sso_sign_in(c, "bob").status_code == 303
    page = c.get("/account").text
    assert "Change your password" not in page and 'name="current_password"' not in page
    assert "Your password is managed by your identity provider" in page
    # Posting the form anyway is refused with the same words, and nothing is audited as a guess.
    answer = c.post(
        "/account/password",
        data={"current_password": "x", "new_password": TEST_PASSWORD, "new_password_confirm": TEST_PASSWORD},
        headers={"X-CSRF-Token": csrf_token_for_session(c.cookies.get(SESSION_COOKIE, ""))},
    )
    assert answer.status_code == 422
    assert "Your password is managed by your identity provider; change it there." in answer.text
    changes = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.password_change")).all()
    assert changes == []


def test_local_account_page_still_offers_the_password_form(client: TestClient) -> None:
    page = client.get("/account").text
    assert "Change your password" in page and 'name="current_password"' in page
    assert "managed by your identity provider" not in page
