"""Expiry notices: a `credential.expiring` notification when an active credential enters the
30-day window and again at 7 days, so it is renewed while the Region is still reachable; and one
for Lifeline's own issuer or reader identity once it is past the point its upkeep should have
renewed it (a sixth of its lifetime left, where renewal starts at a third): the upkeep is failing,
and issuing during a disconnect will stop working when it expires. Flush, never commit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Credential
from app.models.base import utcnow
from app.services.credentials.queries import expiry_warnings
from app.services.credentials.vocabulary import OWN_PURPOSES
from app.services.notifications.events import credential_expiring


def notify_expiring(session: Session, *, now: dt.datetime | None = None) -> int:
    """Queue one notice per credential and stage not yet announced; returns how many are new."""
    now = now or utcnow()
    written = 0
    for warning in expiry_warnings(session, now=now):
        if warning.days_left < 0:
            continue  # expired: the pages say so; a notice now would come too late to act on
        credential = session.get_one(Credential, warning.credential_id)
        event = credential_expiring(
            session,
            credential_id=warning.credential_id,
            subject=warning.username,
            cluster=warning.cluster_name,
            region=credential.cluster.region,
            expires_at=warning.not_after,
            now=now,
            stage=warning.level,
        )
        written += event is not None
    written += _own_identities_overdue(session, now)
    session.flush()
    return written


def _own_identities_overdue(session: Session, now: dt.datetime) -> int:
    written = 0
    own = session.scalars(
        select(Credential).where(
            Credential.status == "active",
            Credential.kind.in_(OWN_PURPOSES),
            Credential.not_after.is_not(None),
            Credential.not_after > now,
        )
    )
    for credential in own:
        assert credential.not_after is not None
        lifetime = credential.not_after - (credential.issued_at or credential.created_at)
        if credential.not_after - now > lifetime / 6:
            continue
        event = credential_expiring(
            session,
            credential_id=credential.id,
            subject=f"{credential.username} (Lifeline's own {credential.kind} identity, not renewed)",
            cluster=credential.cluster.name,
            region=credential.cluster.region,
            expires_at=credential.not_after,
            now=now,
            stage="overdue",
        )
        written += event is not None
    return written
