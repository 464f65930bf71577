"""The outbox against real receivers: a receiver down for a while gets every event once and in
order when it returns; a flapping Outpost gives one notification plus reminders; events commit
with the state change or not at all; quiet periods, filters, signatures, sealed secrets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.integrations.notify import verify_signature
from app.integrations.vault import Vault
from app.jobs.notifications import Sender
from app.models import NotificationAttempt, NotificationDelivery, NotificationEvent, Outpost
from app.services.connectivity.status import refresh_states
from app.services.notifications import events, rules
from tests.fixtures.notifications import ADMIN, T0, Clock, webhook_channel
from tests.support.receivers import HttpReceiver, SmtpReceiver


def _outpost(session: Session, suffix: str = "1", region: str = "us-west-2") -> Outpost:
    outpost = Outpost(
        outpost_id=f"op-0123456789abcdef{suffix}",
        name=f"Plant {suffix}",
        region=region,
        state="CONNECTED",
        state_since=T0 - dt.timedelta(days=1),
        last_sample_at=T0 - dt.timedelta(minutes=1),
        last_value=1.0,
    )
    session.add(outpost)
    session.flush()
    return outpost


def _set_link(session: Session, outpost: Outpost, value: float, now: dt.datetime) -> None:
    outpost.last_sample_at = now - dt.timedelta(seconds=30)
    outpost.last_value = value
    refresh_states(session, [outpost], now)


def _emit(session: Session, key: str, n: int, now: dt.datetime) -> None:
    events.emit(
        session,
        key=key,
        kind="credential.issued",
        phase="info",
        title=f"{key} #{n}",
        body=f"body {n}",
        attrs={"n": n},
        now=now,
    )


def test_receiver_down_for_a_while_gets_every_event_once_in_order(
    session: Session,
    vault: Vault,
    sender: Sender,
    notify_clock: Clock,
    http_receiver: HttpReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    sender.retry = dataclasses.replace(sender.retry, max_seconds=3600)
    hook = webhook_channel(session, vault, http_receiver.url)
    mail = rules.create_channel(
        session,
        vault,
        name="oncall-mail",
        kind="email",
        actor=ADMIN,
        now=T0,
        config={
            "host": "127.0.0.1",
            "port": smtp_receiver.port,
            "sender": "lifeline@outpost.test",
            "recipients": "ops@outpost.test",
            "mode": "insecure",
        },
    )
    for channel in (hook, mail):
        rules.create_rule(session, name=f"all-{channel.name}", channel_id=channel.id, actor=ADMIN, now=T0)
    session.commit()

    http_receiver.fail_with = 503
    smtp_receiver.stop()
    keys = ["k-a", "k-b", "k-c"]
    for n in range(12):
        _emit(session, keys[n % 3], n, notify_clock.now)
        session.commit()
    # Two hours without a reachable receiver: retries back off, nothing is dropped.
    for _ in range(40):
        sender.run_once()
        notify_clock.advance(minutes=3)
    assert http_receiver.processed == [] and smtp_receiver.messages == []
    attempts = session.scalars(select(NotificationDelivery.attempts).order_by(NotificationDelivery.id)).all()
    # The first delivery of each key per channel backs off (2 s doubling, capped at 1 h): far fewer
    # attempts than the 40 cycles; the later ones of the same key wait behind it (order per key).
    head = [attempts[i] for i in range(6)]
    assert all(5 <= a <= 15 for a in head), attempts
    assert attempts[6:] == [0] * 18
    failed = session.scalars(select(NotificationAttempt).where(NotificationAttempt.ok.is_(False))).all()
    assert failed and all("503" in (a.error or "") or "SMTP" in (a.error or "") for a in failed)

    http_receiver.fail_with = None
    smtp_receiver.start()
    # Within one capped back-off (1 h) everything goes out.
    for _ in range(7):
        notify_clock.advance(minutes=10)
        sender.run_once()

    got = [(a.body["key"], a.body["attrs"]["n"]) for a in http_receiver.processed]
    assert sorted(got, key=lambda x: x[1]) == [(keys[n % 3], n) for n in range(12)]
    for key in keys:  # order per key holds
        ns = [n for k, n in got if k == key]
        assert ns == sorted(ns)
    # Each event was accepted once: no repeat even at the transport level (no sender crashed here).
    assert http_receiver.accepted == 12
    subjects = [m["Subject"] for m in smtp_receiver.messages]
    assert len(subjects) == 12 and len({m["Message-ID"] for m in smtp_receiver.messages}) == 12
    statuses = session.scalars(select(NotificationDelivery.status)).all()
    assert statuses == ["delivered"] * 24


def test_webhook_is_signed_and_carries_an_idempotency_key(
    session: Session, vault: Vault, sender: Sender, notify_clock: Clock, http_receiver: HttpReceiver
) -> None:
    hook = webhook_channel(session, vault, http_receiver.url, secret="s3cret-hmac-key-0123456789")
    rules.create_rule(session, name="all", channel_id=hook.id, actor=ADMIN, now=T0)
    _emit(session, "k", 1, notify_clock.now)
    session.commit()
    sender.run_once()
    (arrival,) = http_receiver.arrivals
    assert verify_signature(
        "s3cret-hmac-key-0123456789", arrival.headers["X-Lifeline-Signature"], arrival.raw
    )
    assert not verify_signature(
        "another-secret-0123456789", arrival.headers["X-Lifeline-Signature"], arrival.raw
    )
    assert not verify_signature(
        "s3cret-hmac-key-0123456789", arrival.headers["X-Lifeline-Signature"], arrival.raw + b" "
    )
    delivery = session.scalars(select(NotificationDelivery)).one()
    assert arrival.headers["Idempotency-Key"] == delivery.idempotency_key


def test_channel_secrets_are_sealed_and_never_shown(
    session: Session, vault: Vault, http_receiver: HttpReceiver
) -> None:
    channel = webhook_channel(
        session, vault, http_receiver.url + "?token=hunter2hunter2", secret="topsecret-hmac-0123"
    )
    session.commit()
    raw = session.execute(text("SELECT target, sealed_config FROM notification_channels")).one()
    assert (
        "hunter2" not in raw.target
        and "topsecret" not in raw.sealed_config
        and "hunter2" not in raw.sealed_config
    )
    assert raw.sealed_config.startswith("lv1:")
    assert rules.open_config(vault, channel)["secret"] == "topsecret-hmac-0123"
    audit = session.execute(
        text("SELECT details FROM audit_events WHERE action = 'notification.channel.create'")
    ).one()
    assert "hunter2" not in str(audit.details) and "topsecret" not in str(audit.details)


def test_flapping_outpost_gives_one_notification_plus_reminders_then_one_resolved(
    session: Session, vault: Vault, sender: Sender, notify_clock: Clock, http_receiver: HttpReceiver
) -> None:
    hook = webhook_channel(session, vault, http_receiver.url)
    rules.create_rule(
        session,
        name="outages",
        channel_id=hook.id,
        event_kinds="outpost",
        min_severity="warning",
        reminder_minutes=5,
        actor=ADMIN,
        now=T0,
    )
    outpost = _outpost(session)
    session.commit()
    # 20 minutes of a link flapping every minute.
    for minute in range(20):
        _set_link(session, outpost, 0.0 if minute % 2 == 0 else 1.0, notify_clock.now)
        session.commit()
        sender.run_once()
        notify_clock.advance(minutes=1)
    # Then connected for good: resolved once the hold-down (5 min) has passed.
    _set_link(session, outpost, 1.0, notify_clock.now)
    session.commit()
    for _ in range(7):
        sender.run_once()
        notify_clock.advance(minutes=1)
        outpost.last_sample_at = notify_clock.now - dt.timedelta(seconds=30)
        session.commit()

    phases = [(a.body["phase"], a.body["kind"]) for a in http_receiver.processed]
    # Reminders at 5, 10 and 15 minutes; at 20 the link is back (recovering, so no reminder).
    assert phases == [("open", "outpost.disconnected")] + [("reminder", "outpost.disconnected")] * 3 + [
        ("resolved", "outpost.recovered")
    ]
    opening_id = http_receiver.processed[0].body["event_id"]
    assert all(a.body["opening_event_id"] == opening_id for a in http_receiver.processed[1:])
    resolved = http_receiver.processed[-1].body
    assert "recovered after 19 min" in resolved["title"] and "flapped 9 times" in resolved["body"]


def test_event_commits_with_the_state_change_or_not_at_all(
    session: Session, vault: Vault, http_receiver: HttpReceiver
) -> None:
    hook = webhook_channel(session, vault, http_receiver.url)
    rules.create_rule(session, name="all", channel_id=hook.id, actor=ADMIN, now=T0)
    outpost = _outpost(session)
    session.commit()
    _set_link(session, outpost, 0.0, T0)
    session.rollback()  # the poll's transaction fails after the state changed
    assert session.scalars(select(NotificationEvent)).all() == []
    assert session.get(Outpost, outpost.id).state == "CONNECTED"  # type: ignore[union-attr]
    _set_link(session, outpost, 0.0, T0)
    session.commit()
    (event,) = session.scalars(select(NotificationEvent)).all()
    assert event.kind == "outpost.disconnected" and event.attrs["outpost"] == outpost.outpost_id
    assert session.scalars(select(NotificationDelivery.status)).all() == ["pending"]


def test_rules_filter_by_outpost_region_and_severity_and_quiet_periods_suppress(
    session: Session, vault: Vault, sender: Sender, notify_clock: Clock, http_receiver: HttpReceiver
) -> None:
    hook = webhook_channel(session, vault, http_receiver.url)
    rules.create_rule(
        session,
        name="west-critical",
        channel_id=hook.id,
        regions="us-west-2",
        min_severity="critical",
        actor=ADMIN,
        now=T0,
    )
    west, east = _outpost(session, "1"), _outpost(session, "2", region="us-east-1")
    quiet = _outpost(session, "3")
    rules.create_quiet_period(
        session,
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=1),
        reason="drill",
        outposts=[quiet.outpost_id],
        actor=ADMIN,
        now=T0,
    )
    session.commit()
    _set_link(session, west, 0.5, T0)  # degraded: warning, below the rule's severity
    _set_link(session, east, 0.0, T0)  # another region
    _set_link(session, quiet, 0.0, T0)  # in a quiet period
    _set_link(session, west, 0.0, T0)  # escalates to disconnected: critical
    session.commit()
    sender.run_once()
    assert [(a.body["attrs"]["outpost"], a.body["kind"]) for a in http_receiver.processed] == [
        (west.outpost_id, "outpost.disconnected")
    ]
    suppressed = session.scalars(
        select(NotificationDelivery).where(NotificationDelivery.status == "suppressed")
    ).all()
    assert len(suppressed) == 1 and suppressed[0].event.attrs["outpost"] == quiet.outpost_id


def test_alertmanager_payload_fires_then_resolves(
    session: Session, vault: Vault, sender: Sender, notify_clock: Clock, http_receiver: HttpReceiver
) -> None:
    channel = rules.create_channel(
        session, vault, name="am", kind="alertmanager", config={"url": http_receiver.url}, actor=ADMIN, now=T0
    )
    rules.create_rule(session, name="am-all", channel_id=channel.id, actor=ADMIN, now=T0)
    outpost = _outpost(session)
    session.commit()
    _set_link(session, outpost, 0.0, notify_clock.now)
    session.commit()
    sender.run_once()
    notify_clock.advance(minutes=10)
    _set_link(session, outpost, 1.0, notify_clock.now)
    session.commit()
    notify_clock.advance(minutes=6)
    sender.run_once()
    firing, resolved = (a.body for a in http_receiver.processed)
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert firing["alerts"][0]["labels"]["alertname"] == "outpost_disconnected"
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]
    assert resolved["alerts"][0]["startsAt"] == firing["alerts"][0]["startsAt"]
    assert (
        json.dumps(resolved).count("recovered after 10 min") == 2
    )  # summary in alert and common annotations


def test_resolved_email_answers_the_opening_one(
    session: Session, vault: Vault, sender: Sender, notify_clock: Clock, smtp_receiver: SmtpReceiver
) -> None:
    mail = rules.create_channel(
        session,
        vault,
        name="mail",
        kind="email",
        actor=ADMIN,
        now=T0,
        config={
            "host": "127.0.0.1",
            "port": smtp_receiver.port,
            "sender": "lifeline@outpost.test",
            "recipients": "ops@outpost.test",
        },
    )
    rules.create_rule(session, name="mail", channel_id=mail.id, actor=ADMIN, now=T0)
    outpost = _outpost(session)
    session.commit()
    _set_link(session, outpost, 0.0, notify_clock.now)
    session.commit()
    notify_clock.advance(minutes=3)
    _set_link(session, outpost, 1.0, notify_clock.now)
    session.commit()
    notify_clock.advance(minutes=6)
    sender.run_once()
    opening, resolved = smtp_receiver.messages
    assert "[CRITICAL]" in opening["Subject"] and resolved["Subject"].startswith("[RESOLVED]")
    assert resolved["In-Reply-To"] == opening["Message-ID"]
