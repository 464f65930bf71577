"""The durable outbox: deliveries routed when an event is written, claimed by one sender at a time
with a lease, and recorded before the claim is released.

Claiming: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED`, so two senders never take the same row;
on SQLite the claim transaction starts with a write, which takes the database's single write lock
at once (what `BEGIN IMMEDIATE` gives), so claims are serialised and each reads the latest rows.
A delivery waits while an earlier delivery of the same key to the same channel is still pending:
order per key per channel holds whatever the retries. Flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.orm import Session, aliased

from app.models.notification import (
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
)

PENDING = "pending"
DELIVERED = "delivered"
SUPPRESSED = "suppressed"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    max_seconds: float = 600.0
    lease_seconds: float = 60.0

    def delay(self, attempts: int) -> dt.timedelta:
        """Exponential back-off: base, 2x base, 4x base... capped; never gives up."""
        return dt.timedelta(seconds=min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


def route(
    session: Session, event: NotificationEvent, *, now: dt.datetime, only_rule_id: int | None = None
) -> list[NotificationDelivery]:
    """Create the deliveries of a new event: one per channel whose enabled rule matches.

    A resolved event goes to the channels that had the opening one (so "resolved" follows its
    opening message there); a reminder only through the rule that asked for it.
    """
    from app.services.drills.notify import QUIET, drill_covering, mark_as_drill
    from app.services.notifications.rules import quiet_reason, rule_matches

    targets: dict[int, tuple[int | None, str]] = {}
    quiet: str | None = None
    drill = None
    if event.phase == "resolved" and event.opening_event_id is not None:
        for channel_id, status in session.execute(
            select(NotificationDelivery.channel_id, NotificationDelivery.status)
            .join(NotificationChannel, NotificationChannel.id == NotificationDelivery.channel_id)
            .where(
                NotificationDelivery.event_id == event.opening_event_id,
                NotificationChannel.enabled.is_(True),
                NotificationDelivery.status != CANCELLED,
            )
        ):
            targets[channel_id] = (None, SUPPRESSED if status == SUPPRESSED else PENDING)
    else:
        stmt = (
            select(NotificationRule)
            .join(NotificationChannel, NotificationChannel.id == NotificationRule.channel_id)
            .where(NotificationRule.enabled.is_(True), NotificationChannel.enabled.is_(True))
            .order_by(NotificationRule.id)
        )
        if only_rule_id is not None:
            stmt = stmt.where(NotificationRule.id == only_rule_id)
        drill = drill_covering(session, event, now)
        if drill is not None:
            mark_as_drill(event, drill)
        for rule in session.scalars(stmt):
            if rule.channel_id in targets or not rule_matches(rule, event):
                continue
            if quiet is None:
                quiet = quiet_reason(session, event, now) or ""
            held = bool(quiet) or (drill is not None and rule.during_drill == QUIET)
            targets[rule.channel_id] = (rule.id, SUPPRESSED if held else PENDING)
    deliveries = []
    for channel_id, (rule_id, status) in targets.items():
        delivery = NotificationDelivery(
            event_id=event.id,
            channel_id=channel_id,
            rule_id=rule_id,
            key=event.key,
            status=status,
            idempotency_key=uuid.uuid4().hex,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error=(
                ("held back by a quiet period" if quiet else f"held back during drill #{drill.id}")
                if status == SUPPRESSED and drill is not None
                else "held back by a quiet period"
                if status == SUPPRESSED
                else None
            ),
        )
        session.add(delivery)
        deliveries.append(delivery)
    session.flush()
    return deliveries


def claim_due(
    session: Session, *, owner: str, now: dt.datetime, policy: RetryPolicy, limit: int = 50
) -> list[int]:
    """Lease up to `limit` due deliveries to `owner` and open an attempt for each; returns their ids.

    The caller commits right away: the lease and the attempt row are durable before anything is sent,
    so a sender killed mid-delivery leaves an attempt without an end, and the lease runs out.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # Take the write lock first (BEGIN IMMEDIATE semantics): no other sender claims meanwhile.
        session.execute(text("UPDATE notification_deliveries SET lease_owner = lease_owner WHERE 0"))
    delivery = NotificationDelivery
    earlier = aliased(NotificationDelivery)
    blocked = (
        exists()
        .where(
            earlier.channel_id == delivery.channel_id,
            earlier.key == delivery.key,
            earlier.id < delivery.id,
            earlier.status == PENDING,
        )
        .correlate(delivery)
    )
    candidates = (
        select(delivery.id)
        .where(
            delivery.status == PENDING,
            delivery.next_attempt_at <= now,
            (delivery.lease_until.is_(None)) | (delivery.lease_until < now),
            ~blocked,
        )
        .order_by(delivery.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=delivery)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    # An attempt left open by a sender that died is closed as interrupted: it may or may not have
    # reached the receiver, which the same Idempotency-Key on the retry lets it tell.
    session.execute(
        update(NotificationAttempt)
        .where(NotificationAttempt.delivery_id.in_(ids), NotificationAttempt.finished_at.is_(None))
        .values(
            finished_at=now, ok=False, error="interrupted: the sender stopped before recording an outcome"
        )
    )
    session.execute(
        update(delivery)
        .where(delivery.id.in_(ids))
        .values(
            lease_owner=owner,
            lease_until=now + dt.timedelta(seconds=policy.lease_seconds),
            attempts=delivery.attempts + 1,
        )
    )
    for delivery_id in ids:
        session.add(NotificationAttempt(delivery_id=delivery_id, sender=owner, started_at=now))
    session.flush()
    return ids


def record_delivered(session: Session, delivery_id: int, *, owner: str, now: dt.datetime) -> bool:
    """Mark delivered if `owner` still holds the lease; False when it was lost (the row is left alone)."""
    result = session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.lease_owner == owner)
        .values(status=DELIVERED, delivered_at=now, lease_owner=None, lease_until=None, last_error=None)
    )
    _finish_attempt(session, delivery_id, owner, now, ok=True, error=None)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_failed(
    session: Session, delivery_id: int, *, owner: str, error: str, now: dt.datetime, policy: RetryPolicy
) -> dt.datetime | None:
    """Schedule the retry after an exponential back-off; returns when (None if the lease was lost)."""
    delivery = session.get(NotificationDelivery, delivery_id)
    if delivery is None or delivery.lease_owner != owner:
        return None
    delivery.next_attempt_at = now + policy.delay(delivery.attempts)
    delivery.last_error = error[:2000]
    delivery.lease_owner = None
    delivery.lease_until = None
    _finish_attempt(session, delivery_id, owner, now, ok=False, error=error[:2000])
    session.flush()
    return delivery.next_attempt_at


def _finish_attempt(
    session: Session, delivery_id: int, owner: str, now: dt.datetime, *, ok: bool, error: str | None
) -> None:
    session.execute(
        update(NotificationAttempt)
        .where(
            NotificationAttempt.delivery_id == delivery_id,
            NotificationAttempt.sender == owner,
            NotificationAttempt.finished_at.is_(None),
        )
        .values(finished_at=now, ok=ok, error=error)
    )


# ---------------------------------------------------------------- readers (pages, API, CLI)


def list_events(session: Session, *, limit: int = 100, key: str | None = None) -> list[NotificationEvent]:
    stmt = select(NotificationEvent).order_by(NotificationEvent.id.desc()).limit(limit)
    if key:
        stmt = stmt.where(NotificationEvent.key == key)
    return list(session.scalars(stmt))


def get_event(session: Session, event_id: int) -> NotificationEvent | None:
    return session.get(NotificationEvent, event_id)


def backlog(session: Session) -> dict[str, int]:
    """Deliveries by status (for the page header and /metrics-style checks)."""
    return {
        status: count
        for status, count in session.execute(
            select(NotificationDelivery.status, func.count()).group_by(NotificationDelivery.status)
        )
    }
