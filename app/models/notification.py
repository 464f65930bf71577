"""Notifications: channels, rules, quiet periods, open alerts (folding), the outbox of events and
one delivery row per (event, channel) with its attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, utcnow


class NotificationChannel(Base):
    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # email | webhook | alertmanager | apprise
    kind: Mapped[str] = mapped_column(String(16))
    # What the pages may show: host, recipients; never a token or password.
    target: Mapped[str] = mapped_column(String(500))
    # The whole configuration (URL, HMAC secret, SMTP password...), sealed with the data key.
    sealed_config: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class NotificationRule(Base):
    __tablename__ = "notification_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    # Event kinds ("outpost.disconnected") or families ("outpost"); empty: every kind.
    event_kinds: Mapped[list[Any]] = mapped_column(default=list)
    # Filters; an empty list matches everything.
    outposts: Mapped[list[Any]] = mapped_column(default=list)
    regions: Mapped[list[Any]] = mapped_column(default=list)
    clusters: Mapped[list[Any]] = mapped_column(default=list)
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    # Reminder for an alert still open after this many minutes (None: no reminders).
    reminder_minutes: Mapped[int | None]
    # While a drill runs on the event's Outpost: "label" sends it marked as a drill, "quiet" holds it back.
    during_drill: Mapped[str] = mapped_column(String(8), default="label")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    channel: Mapped[NotificationChannel] = relationship()


class QuietPeriod(Base):
    __tablename__ = "notification_quiet_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(200))
    # Outpost IDs the period covers; empty: the whole fleet.
    outposts: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NotificationAlert(Base):
    """What is open for a stable key: repeats of the same condition fold into it."""

    __tablename__ = "notification_alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # open | recovering (looks fine, waiting out the flap hold-down) | resolved
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[dt.datetime]
    opened_event_id: Mapped[int | None]
    recovering_since: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    # Flaps folded into this alert (bad -> good -> bad inside the hold-down).
    flaps: Mapped[int] = mapped_column(default=0)
    # {rule_id: ISO time of the last reminder sent through that rule}
    reminders: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attrs: Mapped[dict[str, Any]] = mapped_column(default=dict)


class NotificationEvent(Base):
    """The outbox: written in the transaction of the change that causes it; the id orders it."""

    __tablename__ = "notification_events"
    __table_args__ = (Index("ix_notification_events_key_id", "key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    # open | resolved | reminder | info
    phase: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    attrs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A resolved or reminder event names the event that opened the alert.
    opening_event_id: Mapped[int | None]
    occurred_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    deliveries: Mapped[list[NotificationDelivery]] = relationship(
        back_populates="event", order_by="NotificationDelivery.id"
    )


class NotificationDelivery(Base):
    """One event to one channel. The sender claims it with a lease and records the outcome."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_order", "channel_id", "key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("notification_events.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    rule_id: Mapped[int | None]
    key: Mapped[str] = mapped_column(String(200))
    # pending | delivered | suppressed (quiet period) | cancelled (channel disabled or removed)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Sent as Idempotency-Key: the same on every retry, so a receiver can drop a repeat.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    event: Mapped[NotificationEvent] = relationship(back_populates="deliveries")
    channel: Mapped[NotificationChannel] = relationship()
    attempt_log: Mapped[list[NotificationAttempt]] = relationship(order_by="NotificationAttempt.id")


class NotificationAttempt(Base):
    """One try at a delivery; a row with no `finished_at` is a send interrupted by a crash."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    ok: Mapped[bool | None]
    error: Mapped[str | None] = mapped_column(Text)
