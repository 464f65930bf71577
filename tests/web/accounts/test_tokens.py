"""Personal API tokens: created once-visible, used with last-used time, revoked, expired."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiToken, AuditEvent, User
from app.services.accounts.sessions import hash_secret
from tests.conftest import sign_in
from tests.fixtures.accounts import Clock

TOKEN_RE = re.compile(r'<pre class="mono" id="new-token">(llt_[A-Za-z0-9_-]+)</pre>')


def _create_in_ui(http: TestClient, name: str, days: str = "") -> str:
    response = http.post("/account/tokens", data={"name": name, "expires_in_days": days})
    assert response.status_code == 201, response.text[:500]
    match = TOKEN_RE.search(response.text)
    assert match, "token not shown"
    return match.group(1)


def test_token_lifecycle(app: Any, client_as: Any, session: Session, clock: Clock) -> None:
    viewer = client_as("viewer", "alice")
    raw = _create_in_ui(viewer, "ci-readiness")
    # Shown once: not on the next page view, and stored only as its hash.
    assert raw not in viewer.get("/account").text
    stored = session.scalars(select(ApiToken)).one()
    assert stored.token_hash == hash_secret(raw) and raw not in (stored.prefix + stored.token_hash)
    assert stored.prefix == raw[:12] and stored.last_used_at is None

    with TestClient(app, base_url="http://testserver", headers={"Authorization": f"Bearer {raw}"}) as api:
        clock.advance(minutes=3)
        me = api.get("/api/v1/me")
        assert me.json() == {"username": "alice", "role": "viewer", "via_token": True}
        session.refresh(stored)
        assert stored.last_used_at == clock.now
        listed = viewer.get("/account").text
        assert "ci-readiness" in listed and "never" not in listed.split("ci-readiness")[1].split("</tr>")[0]
        # The role is the owner's: a viewer token cannot read the audit trail.
        assert api.get("/api/v1/audit").status_code == 403

        revoke = viewer.post(f"/tokens/{stored.id}/revoke", follow_redirects=False)
        assert revoke.status_code == 303
        refused = api.get("/api/v1/me")
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]

    actions = [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("token.%")))]
    assert sorted(actions) == ["token.create", "token.revoke"]
    details = session.scalars(select(AuditEvent).where(AuditEvent.action == "token.create")).one().details
    assert details["token_prefix"] == raw[:12] and raw not in str(details)


def test_token_expiry(app: Any, client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer", "alice")
    raw = _create_in_ui(viewer, "short", days="1")
    with TestClient(app, base_url="http://testserver", headers={"Authorization": f"Bearer {raw}"}) as api:
        clock.advance(hours=23)
        assert api.get("/api/v1/me").status_code == 200
        clock.advance(hours=2)
        assert api.get("/api/v1/me").status_code == 401
    sign_in(viewer, "alice")  # the browser session itself ended long ago
    assert "expired" in viewer.get("/account").text


def test_tokens_of_a_disabled_account_stop_working(
    api_client_as: Any, client: TestClient, session: Session
) -> None:
    api = api_client_as("viewer", "bot")
    assert api.get("/api/v1/me").status_code == 200
    bot = session.scalars(select(User).where(User.username == "bot")).one()
    client.post(f"/users/{bot.id}/disable")
    assert api.get("/api/v1/me").status_code == 401


def test_bad_token_input_is_explained(client_as: Any) -> None:
    viewer = client_as("viewer")
    no_name = viewer.post("/account/tokens", data={"name": " ", "expires_in_days": "5"})
    assert no_name.status_code == 422 and "Give the token a name" in no_name.text
    bad_days = viewer.post("/account/tokens", data={"name": "x", "expires_in_days": "soon"})
    assert bad_days.status_code == 422 and "number of days" in bad_days.text


def test_users_cannot_revoke_tokens_of_others(client_as: Any, api_client_as: Any, session: Session) -> None:
    api_client_as("admin", "robot")
    token = session.scalars(select(ApiToken)).one()
    viewer = client_as("viewer")
    assert viewer.post(f"/tokens/{token.id}/revoke").status_code == 404
    assert viewer.delete(f"/api/v1/tokens/{token.id}").status_code == 404
    session.refresh(token)
    assert token.revoked_at is None


def test_garbage_bearer_values(anon_client: TestClient) -> None:
    for value in ["Bearer ", "Bearer llt_nope", "Bearer " + "x" * 500, "Basic Zm9vOmJhcg=="]:
        response = anon_client.get("/api/v1/me", headers={"Authorization": value})
        assert response.status_code == 401, value
