"""Role rules: responders issue and download only their own credentials; admins can revoke anyone's;
downloads need a recent password (API tokens are their own proof) and every one is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.audit import AuditEvent
from tests.fixtures.credentials import SimEnv


def _issue(client: Any, env: SimEnv, **body: Any) -> Any:
    return client.post(
        f"/api/v1/clusters/{env.cluster_name}/credentials", json={"lifetime_seconds": 900, **body}
    )


def test_responders_act_on_their_own_credentials_only(
    client_as: Any, client: Any, sim_env: SimEnv, session: Session
) -> None:
    alice = client_as("responder", "alice")
    bob = client_as("responder", "bob")
    viewer = client_as("viewer", "vera")

    mine = _issue(alice, sim_env)
    assert mine.status_code == 201, mine.text
    assert mine.json()["identity"] == "lifeline:alice"
    credential_id = mine.json()["id"]
    # Nobody issues in someone else's name, and viewers issue nothing.
    other = _issue(bob, sim_env, identity="lifeline:alice")
    assert other.status_code == 422 and "only for themselves" in other.json()["detail"]
    assert _issue(viewer, sim_env).status_code == 403
    # Everyone signed in sees the inventory; only the owner (or an admin) downloads.
    assert viewer.get("/api/v1/credentials").status_code == 200
    assert alice.get(f"/api/v1/credentials/{credential_id}/kubeconfig").status_code == 200
    denied = bob.get(f"/api/v1/credentials/{credential_id}/kubeconfig")
    assert denied.status_code == 403
    assert viewer.get(f"/api/v1/credentials/{credential_id}/bundle").status_code == 403
    assert bob.post(f"/api/v1/credentials/{credential_id}/revoke").status_code == 403
    assert bob.post(f"/api/v1/credentials/{credential_id}/renew").status_code == 403
    # An admin can revoke anyone's.
    revoked = client.post(f"/api/v1/credentials/{credential_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"

    events = list(
        session.scalars(select(AuditEvent).where(AuditEvent.target == f"credential:{credential_id}"))
    )
    by_action = {(e.action, e.actor, e.outcome) for e in events}
    assert ("credential.issue", "alice", "success") in by_action
    assert ("credential.download", "alice", "success") in by_action
    assert ("credential.download", "bob", "denied") in by_action
    assert ("credential.revoke", "admin", "success") in by_action


def test_downloads_need_recent_auth_but_tokens_do_not(
    app: Any, client_as: Any, api_client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    carol = client_as("responder", "carol")
    created = _issue(carol, sim_env)
    assert created.status_code == 201
    credential_id = created.json()["id"]
    assert carol.get(f"/credentials/{credential_id}/kubeconfig").status_code == 200

    real_now = dt.datetime.now(dt.UTC)
    app.state.clock = lambda: real_now + dt.timedelta(minutes=6)
    stale = carol.get(f"/credentials/{credential_id}/bundle", follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/reauth")
    # Issuing and renewing hand out credentials too: the same confirmation is asked first.
    for method, path in [
        ("GET", "/credentials/new"),
        ("POST", "/credentials"),
        ("POST", f"/credentials/{credential_id}/renew"),
    ]:
        refused = carol.request(method, path, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/reauth"), path
    # A browser session calling the JSON API is told to confirm its password, not redirected.
    api_refused = _issue(carol, sim_env)
    assert api_refused.status_code == 401, api_refused.text

    token_client = api_client_as("admin")
    bundle = token_client.get(f"/api/v1/credentials/{credential_id}/bundle")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    audit = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "credential.download", AuditEvent.target == f"credential:{credential_id}")
        .order_by(AuditEvent.id)
    ).all()
    assert [(e.details["artifact"], e.details["via"]) for e in audit] == [
        ("kubeconfig", "browser"),
        ("bundle", "token"),  # one spelling of `via` across the trail (issue 9)
    ]
