"""What a running drill means for a notification about its Outpost: rules say "label" (sent, marked
as a drill) or "quiet" (held back, logged as suppressed). Drill events themselves always go out."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Drill, NotificationEvent, Outpost
from app.services.drills.vocabulary import RUNNING

LABEL, QUIET = "label", "quiet"
DURING_DRILL = (LABEL, QUIET)


def drill_covering(session: Session, event: NotificationEvent, now: dt.datetime) -> Drill | None:
    """The running drill on the event's Outpost, or None (drill events are never covered)."""
    outpost_id = (event.attrs or {}).get("outpost")
    if not outpost_id or event.kind.startswith("drill."):
        return None
    return session.scalar(
        select(Drill)
        .join(Outpost, Outpost.id == Drill.outpost_pk)
        .where(Outpost.outpost_id == outpost_id, Drill.state == RUNNING, Drill.started_at <= now)
    )


def mark_as_drill(event: NotificationEvent, drill: Drill) -> None:
    """Say "drill" in the message itself, once, so no reader mistakes it for a real outage."""
    prefix = f"[drill #{drill.id}] "
    if not event.title.startswith(prefix):
        event.title = (prefix + event.title)[:300]
        event.body = f"During disconnect drill #{drill.id} ({drill.title}): {event.body}"
        event.attrs = {**(event.attrs or {}), "drill_id": drill.id}
