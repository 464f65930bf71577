"""Admin account management: every change audited, bad input explained, the last admin kept."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from tests.conftest import TEST_PASSWORD, create_account, sign_in
from tests.support.htmx import Rendering

NEW_PASSWORD = "a brand new passphrase"


def _user(session: Session, name: str) -> User:
    session.expire_all()
    return session.scalars(select(User).where(User.username == name)).one()


def _actions(session: Session) -> list[tuple[str, str, str, str]]:
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    return [(e.actor, e.action, e.target, e.outcome) for e in rows]


def test_admin_manages_accounts_and_every_step_is_audited(
    client: TestClient, anon_client: TestClient, session: Session
) -> None:
    created = client.post(
        "/users",
        data={
            "username": "Bob",
            "role": "viewer",
            "password": TEST_PASSWORD,
            "password_confirm": TEST_PASSWORD,
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    bob = _user(session, "Bob")
    assert bob.role == "viewer" and bob.password_hash.startswith("$argon2id$")
    assert "Bob" in client.get("/users").text
    assert client.post(f"/users/{bob.id}/role", data={"role": "responder"}).status_code == 200
    assert _user(session, "Bob").role == "responder"
    client.post(
        f"/users/{bob.id}/password", data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    )
    client.post(f"/users/{bob.id}/disable")
    assert _user(session, "Bob").disabled
    client.post(f"/users/{bob.id}/enable")
    # Sign-in is case-insensitive on the name; the new password works.
    sign_in(anon_client, "bob", NEW_PASSWORD)
    anon_client.post("/logout")
    mine = [a for a in _actions(session) if a[2] == "user:Bob"]
    assert mine == [
        ("admin", "user.create", "user:Bob", "success"),
        ("admin", "user.role_change", "user:Bob", "success"),
        ("admin", "user.password_reset", "user:Bob", "success"),
        ("admin", "user.disable", "user:Bob", "success"),
        ("admin", "user.enable", "user:Bob", "success"),
        ("Bob", "auth.sign_in", "user:Bob", "success"),
        ("Bob", "auth.sign_out", "user:Bob", "success"),
    ]
    # No password ever reaches the trail.
    dump = " ".join(str(row) for row in session.execute(text("SELECT * FROM audit_events")))
    assert TEST_PASSWORD not in dump and NEW_PASSWORD not in dump


def test_users_page_lists_every_account(client: TestClient, session: Session, htmx: Rendering) -> None:
    create_account(session, "carol", "responder")
    response = client.get("/users", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    assert "carol" in response.text and "admin" in response.text


def test_bad_account_input_is_explained(client: TestClient, session: Session) -> None:
    short = client.post(
        "/users",
        data={"username": "carol", "role": "viewer", "password": "short", "password_confirm": "short"},
    )
    assert short.status_code == 422 and "at least 12 characters" in short.text
    differ = client.post(
        "/users",
        data={
            "username": "carol",
            "role": "viewer",
            "password": TEST_PASSWORD,
            "password_confirm": TEST_PASSWORD + "x",
        },
    )
    assert differ.status_code == 422 and "The passwords differ" in differ.text
    bad_name = client.post(
        "/users",
        data={
            "username": "no spaces",
            "role": "viewer",
            "password": TEST_PASSWORD,
            "password_confirm": TEST_PASSWORD,
        },
    )
    assert bad_name.status_code == 422 and "Usernames are" in bad_name.text
    duplicate = client.post(
        "/users",
        data={
            "username": "ADMIN",
            "role": "viewer",
            "password": TEST_PASSWORD,
            "password_confirm": TEST_PASSWORD,
        },
    )
    assert duplicate.status_code == 422 and "already exists" in duplicate.text
    role = client.post(
        "/users",
        data={
            "username": "carol",
            "role": "root",
            "password": TEST_PASSWORD,
            "password_confirm": TEST_PASSWORD,
        },
    )
    assert role.status_code == 422 and "Unknown role" in role.text
    assert client.get("/users/999999").status_code == 404


def test_the_last_admin_cannot_lock_everyone_out(client: TestClient, session: Session) -> None:
    admin = _user(session, "admin")
    demote = client.post(f"/users/{admin.id}/role", data={"role": "viewer"})
    assert demote.status_code == 422 and "last enabled admin" in demote.text
    disable = client.post(f"/users/{admin.id}/disable")
    assert disable.status_code == 422
    assert _user(session, "admin").role == "admin"


def test_own_password_change(client_as: Any, session: Session) -> None:
    viewer = client_as("viewer", "alice")
    wrong = viewer.post(
        "/account/password",
        data={
            "current_password": "nope nope nope",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422 and "current password is not correct" in wrong.text
    ok = viewer.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert viewer.get("/account").status_code == 200  # this session stays
    outcomes = [a[3] for a in _actions(session) if a[1] == "user.password_change"]
    assert outcomes == ["failure", "success"]


def test_failed_sign_in_and_reauth_are_audited(
    anon_client: TestClient, client_as: Any, session: Session
) -> None:
    viewer = client_as("viewer", "alice")
    viewer.post("/reauth", data={"password": "wrong wrong wrong"})
    anon_client.get("/login")
    anon_client.post(
        "/login",
        data={
            "username": "ghost",
            "password": "x",
            "csrf_token": anon_client.cookies.get("lifeline_csrf", ""),
        },
    )
    events = {(a[1], a[2], a[3]) for a in _actions(session)}
    assert ("auth.reauth", "user:alice", "failure") in events
    assert ("auth.sign_in", "user:ghost", "failure") in events
    ghost = session.scalars(select(AuditEvent).where(AuditEvent.target == "user:ghost")).one()
    assert ghost.client_address == "testclient" and ghost.user_agent == "testclient"
