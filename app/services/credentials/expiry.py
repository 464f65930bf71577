"""Expiry notices: a `credential.expiring` notification when an active credential enters the
30-day window and again at 7 days, so it is renewed while the Region is still reachable. Flush,
never commit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.models import Credential
from app.models.base import utcnow
from app.services.credentials.queries import expiry_warnings
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
    session.flush()
    return written
