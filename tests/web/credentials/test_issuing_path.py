"""The issue form says, before submitting, whether issuing can work now and why; admins revoke
Lifeline's own issuer from the cluster page (audited) and the form then says so."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.models import AuditEvent, Cluster
from app.services.credentials import runs
from app.services.readiness.records import PollResult, record_poll
from app.settings import Settings
from tests.fixtures.credentials import SimEnv

NOTICE = "/credentials/new/issuing-path"


def iam_failed(session: Session, cluster_id: int) -> None:
    record_poll(
        session,
        session.get_one(Cluster, cluster_id),
        PollResult(
            polled_at=dt.datetime.now(dt.UTC),
            auth_path="none",
            reachable=False,
            iam_error="401 Unauthorized",
            api_answered=True,
        ),
    )
    session.commit()


def test_no_cluster_chosen(client: TestClient) -> None:
    assert "Choose a cluster to see whether Lifeline can issue" in client.get(NOTICE).text


def test_connected_cluster_not_polled_yet(client: TestClient, sim_env: SimEnv) -> None:
    text = client.get(NOTICE, params={"cluster": sim_env.cluster_id}).text
    assert 'data-can-issue="unknown"' in text and "Not polled yet" in text
    assert "Should IAM fail, issuing would stop: Lifeline has no issuer identity" in text


def test_iam_unavailable_with_own_issuer(
    client: TestClient,
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
) -> None:
    runs.upkeep_identities(settings, session_factory)
    iam_failed(session, sim_env.cluster_id)
    text = client.get(NOTICE, params={"cluster": sim_env.cluster_id}).text
    assert 'data-can-issue="yes"' in text
    assert "IAM unavailable (401 Unauthorized); Lifeline will issue with its own x509 issuer" in text
    assert "identity, valid until" in text
    assert "<code>cluster-admin</code>" in text and "<code>view</code>" in text
    # The form itself, preset for the cluster, carries the same notice before submitting.
    form = client.get("/credentials/new", params={"cluster": sim_env.cluster_id}).text
    assert "Lifeline will issue with its own x509 issuer identity" in form
    assert '/credentials/new/issuing-path" hx-trigger="change from:select[name=cluster]"' in form


def test_iam_unavailable_without_own_issuer(client: TestClient, sim_env: SimEnv, session: Session) -> None:
    iam_failed(session, sim_env.cluster_id)
    text = client.get(NOTICE, params={"cluster": sim_env.cluster_id}).text
    assert 'data-can-issue="no"' in text
    assert (
        "No way to issue now: IAM unavailable (401 Unauthorized), and Lifeline has no issuer identity" in text
    )


def test_admin_revokes_the_issuer_from_the_cluster_page(
    client: TestClient,
    client_as: object,
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
) -> None:
    runs.upkeep_identities(settings, session_factory)
    responder = client_as("responder")  # type: ignore[operator]
    assert responder.post(f"/clusters/{sim_env.cluster_id}/identities/issuer/revoke").status_code == 403
    response = client.post(f"/clusters/{sim_env.cluster_id}/identities/issuer/revoke", follow_redirects=False)
    assert response.status_code == 303
    assert sim_env.bindings() == ["lifeline:reader"]
    session.expire_all()
    assert "identity.revoke" in set(session.scalars(select(AuditEvent.action)))
    iam_failed(session, sim_env.cluster_id)
    text = client.get(NOTICE, params={"cluster": sim_env.cluster_id}).text
    assert "Lifeline&#39;s own issuer identity was revoked by an admin" in text
    page = client.get(f"/clusters/{sim_env.cluster_name}").text
    assert "Enable again" in page
