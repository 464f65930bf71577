"""What one delivery sends, and sending it through the channel's integration; also the admins'
"send a test message" (a real event through the real path, recorded in the log like any other).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations import notify
from app.integrations.vault import Vault
from app.models.notification import NotificationChannel, NotificationDelivery, NotificationEvent
from app.services.audit import Actor, record_audit
from app.services.errors import Conflict
from app.services.notifications.rules import open_config

DEFAULT_TIMEOUTS = notify.Timeouts()


def build_message(session: Session, delivery: NotificationDelivery, dashboard_url: str) -> notify.Message:
    event = delivery.event
    opening_key = None
    opened_at = None
    if event.opening_event_id is not None:
        opening_key = session.scalar(
            select(NotificationDelivery.idempotency_key).where(
                NotificationDelivery.event_id == event.opening_event_id,
                NotificationDelivery.channel_id == delivery.channel_id,
            )
        )
        opening = session.get(NotificationEvent, event.opening_event_id)
        opened_at = opening.occurred_at if opening else None
    return notify.Message(
        event_id=event.id,
        key=event.key,
        kind=event.kind,
        phase=event.phase,
        severity=event.severity,
        title=event.title,
        body=event.body,
        occurred_at=event.occurred_at,
        idempotency_key=delivery.idempotency_key,
        attrs=event.attrs or {},
        opening_event_id=event.opening_event_id,
        opened_at=opened_at,
        opening_idempotency_key=opening_key,
        dashboard_url=f"{dashboard_url.rstrip('/')}/notifications/events/{event.id}",
    )


def send(
    channel: NotificationChannel, config: dict[str, Any], message: notify.Message, timeouts: notify.Timeouts
) -> None:
    """Send through the channel's kind; raises notify.DeliveryError."""
    if channel.kind == "webhook":
        notify.send_webhook(config["url"], config.get("secret"), message, timeouts)
    elif channel.kind == "alertmanager":
        notify.send_alertmanager(config["url"], config.get("bearer"), channel.name, message, timeouts)
    elif channel.kind == "email":
        smtp = notify.SmtpConfig(
            host=config["host"],
            port=int(config["port"]),
            sender=config["sender"],
            recipients=list(config["recipients"]),
            mode=config.get("mode", "insecure"),
            username=config.get("username"),
            password=config.get("password"),
            verify_tls=bool(config.get("verify_tls", True)),
        )
        notify.send_email(smtp, message, timeouts)
    elif channel.kind == "apprise":
        notify.send_apprise(config["url"], message)
    else:
        raise notify.DeliveryError(f"unknown channel kind {channel.kind!r}")


def send_test(
    session: Session,
    vault: Vault | None,
    channel: NotificationChannel,
    *,
    actor: Actor,
    now: dt.datetime,
    dashboard_url: str,
    timeouts: notify.Timeouts = DEFAULT_TIMEOUTS,
) -> tuple[bool, str | None]:
    """Send a real test message now; recorded as an event with its delivery, and audited."""
    from app.services.notifications.events import emit

    if not channel.enabled:
        raise Conflict(f"channel {channel.name} is disabled; enable it to test it")
    config = open_config(vault, channel)
    event = emit(
        session,
        key=f"test:channel:{channel.id}:{now.timestamp():.0f}",
        kind="notification.test",
        phase="info",
        title=f"Test message for channel {channel.name}",
        body=f"{actor.name} sent this test from Outpost Lifeline at {now:%Y-%m-%d %H:%M:%S} UTC.",
        attrs={"channel": channel.name},
        now=now,
        only_rule_id=-1,
    )
    delivery = NotificationDelivery(
        event_id=event.id,
        channel_id=channel.id,
        rule_id=None,
        key=event.key,
        status="pending",
        idempotency_key=f"test-{event.id}-{channel.id}",
        attempts=1,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    error = None
    try:
        send(channel, config, build_message(session, delivery, dashboard_url), timeouts)
        delivery.status, delivery.delivered_at = "delivered", now
    except notify.DeliveryError as exc:
        error = str(exc)
        delivery.status, delivery.last_error = "cancelled", f"test failed: {error}"
    record_audit(
        session,
        actor=actor,
        action="notification.channel.test",
        target=f"channel:{channel.name}",
        outcome="success" if error is None else "failure",
        details={"error": error},
        now=now,
    )
    session.flush()
    return error is None, error
