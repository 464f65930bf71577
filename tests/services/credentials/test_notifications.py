"""Credential and readiness events reach the notifications outbox in the action's own transaction:
issued, downloaded and revoked credentials, expiry notices (30 and 7 days, once each), a readiness
score drop and a new critical finding (an exempted one pages nobody)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault
from app.models import Cluster, NotificationDelivery, NotificationEvent
from app.services.audit import SYSTEM
from app.services.credentials.expiry import notify_expiring
from app.services.notifications import rules
from app.services.readiness.model import Finding, Severity, Status
from app.services.readiness.records import PollResult, add_exemption, record_poll
from tests.fixtures.credentials import SimEnv
from tests.fixtures.notifications import ADMIN, T0, webhook_channel


def _events(session: Session, prefix: str) -> list[NotificationEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(NotificationEvent)
            .where(NotificationEvent.kind.startswith(prefix))
            .order_by(NotificationEvent.id)
        )
    )


def test_issue_download_and_revoke_are_notified(
    client: TestClient, sim_env: SimEnv, session: Session, vault: Vault
) -> None:
    hook = webhook_channel(session, vault, "http://127.0.0.1:9/hook")
    rules.create_rule(
        session, name="credentials", channel_id=hook.id, event_kinds="credential", actor=ADMIN, now=T0
    )
    session.commit()
    record = client.post(
        f"/api/v1/clusters/{sim_env.cluster_name}/credentials",
        json={"identity": "lifeline:oncall", "lifetime_seconds": 3600},
    ).json()
    assert client.get(f"/api/v1/credentials/{record['id']}/kubeconfig").status_code == 200
    assert client.post(f"/api/v1/credentials/{record['id']}/revoke").status_code == 200

    events = _events(session, "credential.")
    assert [e.kind for e in events] == ["credential.issued", "credential.downloaded", "credential.revoked"]
    for event in events:
        assert event.attrs["cluster"] == sim_env.cluster_name
        assert event.attrs["credential_id"] == record["id"]
        assert "lifeline:oncall" in event.title
    deliveries = session.scalars(select(NotificationDelivery)).all()
    assert sorted(d.event_id for d in deliveries) == [e.id for e in events]


def test_expiry_notices_once_per_stage(client: TestClient, sim_env: SimEnv, session: Session) -> None:
    record = client.post(
        f"/api/v1/clusters/{sim_env.cluster_name}/credentials",
        json={"identity": "lifeline:short", "lifetime_seconds": 20 * 86400},
    ).json()
    assert record["status"] == "active"
    now = dt.datetime.now(dt.UTC)
    assert notify_expiring(session, now=now) == 1  # within 30 days
    assert notify_expiring(session, now=now + dt.timedelta(hours=6)) == 0  # folded
    assert notify_expiring(session, now=now + dt.timedelta(days=14)) == 1  # within 7 days
    assert notify_expiring(session, now=now + dt.timedelta(days=15)) == 0
    assert notify_expiring(session, now=now + dt.timedelta(days=21)) == 0  # expired: too late to act
    events = _events(session, "credential.expiring")
    assert len(events) == 2 and all("lifeline:short" in e.title for e in events)


def _finding(check_id: str, status: Status, severity: Severity = Severity.critical) -> Finding:
    return Finding(check_id=check_id, title=check_id, severity=severity, status=status, summary="")


def _poll(session: Session, cluster: Cluster, at: dt.datetime, *findings: Finding) -> None:
    record_poll(
        session, cluster, PollResult(polled_at=at, auth_path="iam", reachable=True, findings=findings)
    )


def test_score_drop_and_new_critical_finding_are_notified(session: Session) -> None:
    cluster = Cluster(name="plant7-local", region="us-west-2", status="ACTIVE", source="manual")
    session.add(cluster)
    session.flush()
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    passing = [_finding("breakglass-credential", Status.passed), _finding("ebs-workloads", Status.passed)]
    _poll(session, cluster, at, *passing)
    assert _events(session, "readiness.") == []

    _poll(session, cluster, at + dt.timedelta(minutes=5), _finding("breakglass-credential", Status.fail),
          _finding("ebs-workloads", Status.passed))  # fmt: skip
    kinds = [e.kind for e in _events(session, "readiness.")]
    assert kinds == ["readiness.score_dropped", "readiness.critical_finding"]
    critical = _events(session, "readiness.critical_finding")[0]
    assert critical.attrs == {
        "cluster": "plant7-local",
        "region": "us-west-2",
        "check": "breakglass-credential",
    }

    # Still failing at the next poll: nothing new.
    _poll(session, cluster, at + dt.timedelta(minutes=10), _finding("breakglass-credential", Status.fail),
          _finding("ebs-workloads", Status.passed))  # fmt: skip
    assert len(_events(session, "readiness.")) == 2

    # A critical failure someone accepted as a risk does not page.
    add_exemption(
        session,
        cluster,
        check_id="ebs-workloads",
        target="",
        reason="EBS pods are pinned; accepted until the migration",
        expires_at=at + dt.timedelta(days=30),
        actor=SYSTEM,
    )
    _poll(session, cluster, at + dt.timedelta(minutes=15), _finding("breakglass-credential", Status.fail),
          _finding("ebs-workloads", Status.fail))  # fmt: skip
    assert [e.attrs.get("check") for e in _events(session, "readiness.critical_finding")] == [
        "breakglass-credential"
    ]


def test_an_own_identity_that_was_not_renewed_is_notified_once(session: Session, vault: Vault) -> None:
    """Lifeline renews its issuer and reader identities at a third of their lifetime left; one still
    active at a sixth left means the upkeep fails, and someone must know before it expires."""
    from tests.factories import make_active_credential, make_cluster

    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    cluster = make_cluster(session)
    overdue = make_active_credential(session, cluster, vault)
    overdue.kind, overdue.username = "issuer", "lifeline:issuer"
    overdue.issued_at, overdue.not_after = now - dt.timedelta(days=26), now + dt.timedelta(days=4)
    fresh = make_active_credential(session, make_cluster(session, "edge-2"), vault)
    fresh.kind, fresh.username = "reader", "lifeline:reader"
    fresh.issued_at, fresh.not_after = now - dt.timedelta(days=15), now + dt.timedelta(days=15)
    session.flush()

    assert notify_expiring(session, now=now) == 1
    assert notify_expiring(session, now=now + dt.timedelta(hours=6)) == 0  # folded
    [event] = _events(session, "credential.expiring")
    assert "lifeline:issuer" in event.title and "not renewed" in event.title
    assert event.attrs["credential_id"] == overdue.id
