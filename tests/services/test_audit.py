"""record_audit: what it stores, what it refuses to store, and the append-only guard."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from app.models import AuditEvent
from app.services.audit import (
    REDACTED,
    Actor,
    AuditFilter,
    ClientInfo,
    list_audit_events,
    record_audit,
)

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_record_audit_stores_every_field(session: Session) -> None:
    event = record_audit(
        session,
        actor=Actor(name="alice"),
        action="credential.issue",
        target="cluster:us-west-2/edge-1",
        outcome="success",
        client=ClientInfo("127.0.0.7", "curl/8"),
        details={"ttl_minutes": 60},
        now=T0,
    )
    stored = session.get(AuditEvent, event.id)
    assert stored is not None
    assert (stored.actor, stored.action, stored.target, stored.outcome) == (
        "alice",
        "credential.issue",
        "cluster:us-west-2/edge-1",
        "success",
    )
    assert (stored.client_address, stored.user_agent) == ("127.0.0.7", "curl/8")
    assert stored.occurred_at == T0
    assert stored.details == {"ttl_minutes": 60}


def test_record_audit_never_stores_secrets(session: Session) -> None:
    event = record_audit(
        session,
        actor=Actor(name="alice"),
        action="token.create",
        target="user:alice",
        details={
            "password": "hunter2",
            "new_password": "x",
            "token": "llt_whatever",
            "private_key": "k",
            "note": "-----BEGIN EC PRIVATE KEY-----\nMHc...",
            "echo": "llt_" + "A" * 40,
            "token_prefix": "llt_abcd1234",
            "name": "ci",
            "via_token": True,
            "token_id": 7,
        },
    )
    details = event.details
    for key in ("password", "new_password", "token", "private_key", "note", "echo"):
        assert details[key] == REDACTED, key
    assert details["token_prefix"] == "llt_abcd1234"
    assert details["name"] == "ci"
    assert details["via_token"] is True and details["token_id"] == 7


def test_filters_and_paging(session: Session) -> None:
    for minute in range(5):
        record_audit(
            session,
            actor=Actor(name="bob" if minute % 2 else "alice"),
            action="credential.download" if minute < 3 else "auth.sign_in",
            target=f"cluster:c{minute}",
            now=T0 + dt.timedelta(minutes=minute),
        )
    everything = list_audit_events(session, AuditFilter(), per_page=2)
    assert everything.total == 5 and everything.pages == 3
    assert [e.target for e in everything.events] == ["cluster:c4", "cluster:c3"]
    assert list_audit_events(session, AuditFilter(actor="bob")).total == 2
    assert list_audit_events(session, AuditFilter(action="credential")).total == 3
    assert list_audit_events(session, AuditFilter(action="auth.sign_in")).total == 2
    assert list_audit_events(session, AuditFilter(target="c4")).total == 1
    window = AuditFilter(since=T0 + dt.timedelta(minutes=1), until=T0 + dt.timedelta(minutes=3))
    assert [e.target for e in list_audit_events(session, window).events] == ["cluster:c2", "cluster:c1"]


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_audit_events_are_append_only_in_the_database(session: Session, verb: str) -> None:
    event = record_audit(session, actor=Actor(name="alice"), action="auth.sign_in", target="user:alice")
    stmt = (
        update(AuditEvent).where(AuditEvent.id == event.id).values(outcome="failure")
        if verb == "update"
        else delete(AuditEvent).where(AuditEvent.id == event.id)
    )
    nested = session.begin_nested()
    with pytest.raises(DatabaseError, match="append-only"):
        session.execute(stmt)
    nested.rollback()
    assert session.execute(
        text("SELECT outcome FROM audit_events WHERE id = :i"), {"i": event.id}
    ).scalar() == ("success")
