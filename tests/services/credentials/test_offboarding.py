"""Issue 12, finding 7: disabling or demoting a user left their cluster credentials working (365-day
default). Offboarding revokes them by default, with an audit row each; the admin may keep them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Credential, User
from app.models.audit import AuditEvent
from tests.fixtures.credentials import SimEnv


def _issue_as_responder(client_as: Any, env: SimEnv, name: str) -> tuple[int, int]:
    responder = client_as("responder", name)
    response = responder.post(
        f"/api/v1/clusters/{env.cluster_name}/credentials", json={"lifetime_seconds": 3600}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["id"]


def _user_id(session: Session, name: str) -> int:
    return session.scalars(select(User.id).where(User.username == name)).one()


def test_disabling_a_user_revokes_their_credentials(
    client: TestClient, client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    credential_id, _ = _issue_as_responder(client_as, sim_env, "rita")
    assert len(sim_env.bindings()) == 1
    response = client.post(f"/users/{_user_id(session, 'rita')}/disable", follow_redirects=False)
    assert response.status_code == 303
    assert "revoked-1-of-1" in response.headers["location"]
    session.expire_all()
    assert session.get(Credential, credential_id).status == "revoked"  # type: ignore[union-attr]
    assert sim_env.bindings() == []
    rows = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "credential.revoke", AuditEvent.target == f"credential:{credential_id}"
        )
    ).all()
    assert [r.outcome for r in rows] == ["success"] and rows[0].actor == "admin"


def test_demoting_revokes_unless_the_admin_keeps_them(
    client: TestClient, client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    kept_id, _ = _issue_as_responder(client_as, sim_env, "kim")
    client.post(
        f"/users/{_user_id(session, 'kim')}/role", data={"role": "viewer", "keep_credentials": "true"}
    )
    session.expire_all()
    assert session.get(Credential, kept_id).status == "active"  # type: ignore[union-attr]
    gone_id, _ = _issue_as_responder(client_as, sim_env, "lee")
    client.post(f"/users/{_user_id(session, 'lee')}/role", data={"role": "viewer"})
    session.expire_all()
    assert session.get(Credential, gone_id).status == "revoked"  # type: ignore[union-attr]
