"""The event vocabulary, folding by stable key, and the hook functions features call.

An alert is what is open for a key (`outpost:op-...:link`); a repeat of the same condition folds
into it. An Outpost that comes back is *recovering* for `flap_hold_seconds` before the resolved
message goes out, so a flapping link gives one notification (plus reminders), not one per flap.
Every hook only adds and flushes: the event commits with the caller's change, or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.fleet import Outpost
from app.models.notification import NotificationAlert, NotificationEvent, NotificationRule

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@dataclass(frozen=True)
class EventKind:
    kind: str
    severity: str
    summary: str
    # Where it comes from today; None when the hook exists but its source does not yet.
    source: str | None


KINDS: dict[str, EventKind] = {
    k.kind: k
    for k in (
        EventKind(
            "outpost.disconnected", "critical", "An Outpost lost its link to the Region", "connectivity"
        ),
        EventKind("outpost.degraded", "warning", "An Outpost's link is degraded", "connectivity"),
        EventKind("outpost.unknown", "warning", "An Outpost's state is unknown for too long", "connectivity"),
        EventKind(
            "outpost.recovered", "info", "An Outpost is connected again (with the duration)", "connectivity"
        ),
        EventKind("aws.unreachable", "critical", "The dashboard cannot reach AWS", "connectivity"),
        EventKind("aws.reachable", "info", "The dashboard reaches AWS again", "connectivity"),
        EventKind("credential.expiring", "warning", "A credential or identity expires soon", None),
        EventKind("credential.issued", "info", "A credential was issued", None),
        EventKind("credential.downloaded", "info", "A credential was downloaded", None),
        EventKind("credential.revoked", "info", "A credential was revoked", None),
        EventKind("readiness.score_dropped", "warning", "A cluster's readiness score dropped", None),
        EventKind("readiness.critical_finding", "critical", "A new critical readiness finding", None),
        EventKind("drill.started", "info", "A disconnect drill started", "drills"),
        EventKind("drill.item_failed", "warning", "A drill check failed", "drills"),
        EventKind("drill.ended", "info", "A disconnect drill ended", "drills"),
        EventKind(
            "account.break_glass", "warning", "A break-glass account signed in while SSO is on", "accounts"
        ),
        EventKind("notification.test", "info", "A test message from the channels page", "notifications"),
    )
}
FAMILIES = sorted({kind.split(".", 1)[0] for kind in KINDS})


@dataclass(frozen=True)
class NotifyPolicy:
    flap_hold_seconds: int = 300
    unknown_after_seconds: int = 600
    dashboard_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_settings(cls, settings: Any) -> NotifyPolicy:
        return cls(
            flap_hold_seconds=settings.notify_flap_hold_seconds,
            unknown_after_seconds=settings.notify_unknown_after_minutes * 60,
            dashboard_url=settings.base_url,
        )


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


# ---------------------------------------------------------------- the one writer


def emit(
    session: Session,
    *,
    key: str,
    kind: str,
    phase: str,
    title: str,
    body: str,
    now: dt.datetime,
    attrs: Mapping[str, Any] | None = None,
    severity: str | None = None,
    opening_event_id: int | None = None,
    only_rule_id: int | None = None,
) -> NotificationEvent:
    """Append one event to the outbox and its deliveries (flushed, committed by the caller)."""
    from app.services.notifications.outbox import route

    if kind not in KINDS:
        raise ValueError(f"unknown notification event kind {kind!r}")
    event = NotificationEvent(
        key=key[:200],
        kind=kind,
        phase=phase,
        severity=severity or KINDS[kind].severity,
        title=title[:300],
        body=body,
        attrs=dict(attrs or {}),
        opening_event_id=opening_event_id,
        occurred_at=now,
        created_at=now,
    )
    session.add(event)
    session.flush()
    route(session, event, now=now, only_rule_id=only_rule_id)
    return event


def _open(
    session: Session,
    alert: NotificationAlert | None,
    *,
    key: str,
    kind: str,
    title: str,
    body: str,
    attrs: Mapping[str, Any],
    now: dt.datetime,
) -> NotificationAlert:
    event = emit(session, key=key, kind=kind, phase="open", title=title, body=body, attrs=attrs, now=now)
    if alert is None:
        alert = NotificationAlert(key=key, flaps=0, reminders={})
        session.add(alert)
    alert.kind = kind
    alert.status = "open"
    alert.severity = event.severity
    alert.opened_at = now
    alert.opened_event_id = event.id
    alert.recovering_since = None
    alert.resolved_at = None
    alert.flaps = 0
    alert.reminders = {}
    alert.attrs = dict(attrs)
    session.flush()
    return alert


def _resolve(
    session: Session, alert: NotificationAlert, *, kind: str, title: str, body: str, now: dt.datetime
) -> NotificationEvent:
    event = emit(
        session,
        key=alert.key,
        kind=kind,
        phase="resolved",
        title=title,
        body=body,
        attrs={**alert.attrs, "opened_at": alert.opened_at.isoformat(), "flaps": alert.flaps},
        severity=alert.severity,
        opening_event_id=alert.opened_event_id,
        now=now,
    )
    alert.status = "resolved"
    alert.resolved_at = now
    alert.recovering_since = None
    session.flush()
    return event


# ---------------------------------------------------------------- Outposts


def outpost_key(outpost: Outpost) -> str:
    return f"outpost:{outpost.outpost_id}:link"


def _outpost_attrs(outpost: Outpost) -> dict[str, Any]:
    clusters = sorted(c.name for c in outpost.clusters) if "clusters" in outpost.__dict__ else []
    return {
        "outpost": outpost.outpost_id,
        "outpost_name": outpost.name,
        "region": outpost.region,
        "clusters": clusters,
    }


def outpost_state_changed(
    session: Session, outpost: Outpost, old: str | None, new: str, now: dt.datetime, policy: NotifyPolicy
) -> None:
    """Hook called by `refresh_states` in the transaction that stores the new state."""
    key = outpost_key(outpost)
    alert = session.get(NotificationAlert, key)
    active = alert is not None and alert.status in ("open", "recovering")
    if new in ("DISCONNECTED", "DEGRADED"):
        kind = "outpost.disconnected" if new == "DISCONNECTED" else "outpost.degraded"
        if active and alert is not None:
            if alert.status == "recovering":
                alert.status = "open"
                alert.recovering_since = None
                alert.flaps += 1
            if severity_rank(KINDS[kind].severity) > severity_rank(alert.severity):
                # Worse than what was announced (degraded -> disconnected): say so, same alert.
                event = emit(
                    session,
                    key=key,
                    kind=kind,
                    phase="open",
                    title=f"Outpost {outpost.name} is now {new.lower()}",
                    body=f"{outpost.outpost_id} ({outpost.region}) went from {alert.kind.split('.')[1]} to "
                    f"{new.lower()} at {now:%Y-%m-%d %H:%M} UTC.",
                    attrs=_outpost_attrs(outpost),
                    opening_event_id=alert.opened_event_id,
                    now=now,
                )
                alert.kind, alert.severity = kind, event.severity
            session.flush()
            return
        _open(
            session,
            alert,
            key=key,
            kind=kind,
            title=f"Outpost {outpost.name} is {new.lower()}",
            body=f"{outpost.outpost_id} ({outpost.region}) is {new.lower()} since "
            f"{now:%Y-%m-%d %H:%M} UTC (was {(old or 'UNKNOWN').lower()}).",
            attrs=_outpost_attrs(outpost),
            now=now,
        )
        return
    if new == "CONNECTED" and active and alert is not None and alert.status == "open":
        alert.status = "recovering"
        alert.recovering_since = now
        session.flush()
        if policy.flap_hold_seconds <= 0:
            _resolve_outpost(session, alert, now)


def _resolve_outpost(session: Session, alert: NotificationAlert, now: dt.datetime) -> None:
    back_at = alert.recovering_since or now
    lasted = _duration((back_at - alert.opened_at).total_seconds())
    name = alert.attrs.get("outpost_name") or alert.attrs.get("outpost")
    flaps = f" The link flapped {alert.flaps} times meanwhile." if alert.flaps else ""
    _resolve(
        session,
        alert,
        kind="outpost.recovered",
        title=f"Outpost {name} recovered after {lasted}",
        body=f"{alert.attrs.get('outpost')} ({alert.attrs.get('region')}) is connected again since "
        f"{back_at:%Y-%m-%d %H:%M} UTC; it was {alert.kind.split('.')[1]} for {lasted}.{flaps}",
        now=now,
    )


# ---------------------------------------------------------------- periodic: hold-downs, reminders, AWS


def tick(session: Session, now: dt.datetime, policy: NotifyPolicy) -> int:
    """Resolve alerts past their flap hold-down, open 'unknown too long', send due reminders and
    follow the dashboard's own reach of AWS. Returns the number of events written."""
    written = 0
    hold = dt.timedelta(seconds=policy.flap_hold_seconds)
    for alert in session.scalars(
        select(NotificationAlert)
        .where(NotificationAlert.status == "recovering")
        .order_by(NotificationAlert.key)
    ):
        if alert.recovering_since is not None and alert.recovering_since + hold <= now:
            _resolve_outpost(session, alert, now)
            written += 1

    unknown_before = now - dt.timedelta(seconds=policy.unknown_after_seconds)
    for outpost in session.scalars(
        select(Outpost).where(Outpost.state == "UNKNOWN", Outpost.state_since <= unknown_before)
    ):
        key = outpost_key(outpost)
        current = session.get(NotificationAlert, key)
        if current is None or current.status == "resolved":
            since = outpost.state_since or now
            _open(
                session,
                current,
                key=key,
                kind="outpost.unknown",
                title=f"Outpost {outpost.name} is unknown for {_duration((now - since).total_seconds())}",
                body=f"No ConnectedStatus for {outpost.outpost_id} ({outpost.region}) since "
                f"{since:%Y-%m-%d %H:%M} UTC.",
                attrs=_outpost_attrs(outpost),
                now=now,
            )
            written += 1
    for outpost in session.scalars(select(Outpost).where(Outpost.state == "CONNECTED")):
        current = session.get(NotificationAlert, outpost_key(outpost))
        if current is not None and current.status == "open" and current.kind == "outpost.unknown":
            current.status, current.recovering_since = "recovering", now
    written += _aws_vantage(session, now)
    written += _reminders(session, now)
    session.flush()
    return written


def _aws_vantage(session: Session, now: dt.datetime) -> int:
    from app.services.connectivity.status import aws_vantage

    vantage = aws_vantage(session, now)
    key = "dashboard:aws"
    alert = session.get(NotificationAlert, key)
    if vantage.reachable is False and (alert is None or alert.status == "resolved"):
        since = vantage.unreachable_since or now
        _open(
            session,
            alert,
            key=key,
            kind="aws.unreachable",
            title="The dashboard cannot reach AWS",
            body=f"Every region's connectivity poll failed since {since:%Y-%m-%d %H:%M} UTC "
            f"({vantage.message or 'no answer'}). Outpost states are unknown until it is back.",
            attrs={},
            now=now,
        )
        return 1
    if vantage.reachable is True and alert is not None and alert.status == "open":
        lasted = _duration((now - alert.opened_at).total_seconds())
        _resolve(
            session,
            alert,
            kind="aws.reachable",
            title=f"The dashboard reaches AWS again after {lasted}",
            body=f"Connectivity polls succeed again since {now:%Y-%m-%d %H:%M} UTC.",
            now=now,
        )
        return 1
    return 0


def _reminders(session: Session, now: dt.datetime) -> int:
    from app.services.notifications.rules import rule_matches

    rules = [
        r
        for r in session.scalars(select(NotificationRule).where(NotificationRule.enabled.is_(True)))
        if r.reminder_minutes
    ]
    if not rules:
        return 0
    written = 0
    for alert in session.scalars(
        select(NotificationAlert).where(NotificationAlert.status == "open").order_by(NotificationAlert.key)
    ):
        opening = session.get(NotificationEvent, alert.opened_event_id) if alert.opened_event_id else None
        if opening is None:
            continue
        reminders = dict(alert.reminders)
        for rule in rules:
            if not rule_matches(rule, opening):
                continue
            last_text = reminders.get(str(rule.id))
            last = dt.datetime.fromisoformat(last_text) if last_text else alert.opened_at
            if now - last < dt.timedelta(minutes=rule.reminder_minutes or 0):
                continue
            lasted = _duration((now - alert.opened_at).total_seconds())
            emit(
                session,
                key=alert.key,
                kind=alert.kind,
                phase="reminder",
                title=f"Still open after {lasted}: {opening.title}",
                body=f"{opening.body}\nOpen since {alert.opened_at:%Y-%m-%d %H:%M} UTC ({lasted}).",
                attrs=alert.attrs,
                severity=alert.severity,
                opening_event_id=alert.opened_event_id,
                only_rule_id=rule.id,
                now=now,
            )
            reminders[str(rule.id)] = now.isoformat()
            written += 1
        alert.reminders = reminders
    return written


# ---------------------------------------------------------------- hooks for the other features


def credential_event(
    session: Session,
    *,
    action: str,
    credential_id: int,
    cluster: str,
    region: str,
    subject: str,
    actor: str,
    now: dt.datetime,
) -> NotificationEvent:
    """Hook for the credentials service: `action` is issued, downloaded or revoked."""
    return emit(
        session,
        key=f"credential:{credential_id}:{action}",
        kind=f"credential.{action}",
        phase="info",
        title=f"Credential {subject} {action} on {cluster}",
        body=f"{actor} {action} credential {subject} (#{credential_id}) for cluster {cluster} ({region}).",
        attrs={"cluster": cluster, "region": region, "credential_id": credential_id, "actor": actor},
        now=now,
    )


def credential_expiring(
    session: Session,
    *,
    credential_id: int,
    subject: str,
    cluster: str,
    region: str,
    expires_at: dt.datetime,
    now: dt.datetime,
    stage: str = "warn",
) -> NotificationEvent | None:
    """Hook for the credentials verifier: once per credential, expiry and stage (`warn` within 30
    days, `bad` within 7: the key folds repeats)."""
    key = f"credential:{credential_id}:expiring:{expires_at:%Y%m%d%H%M}:{stage}"
    if session.get(NotificationAlert, key) is not None:
        return None
    left = _duration((expires_at - now).total_seconds())
    alert = _open(
        session,
        None,
        key=key,
        kind="credential.expiring",
        title=f"Credential {subject} expires in {left}",
        body=f"{subject} on {cluster} ({region}) expires at {expires_at:%Y-%m-%d %H:%M} UTC.",
        attrs={"cluster": cluster, "region": region, "credential_id": credential_id},
        now=now,
    )
    alert.status = "resolved"  # nothing to remind or resolve: one message per expiry and stage
    return session.get(NotificationEvent, alert.opened_event_id)


def readiness_changed(
    session: Session,
    *,
    cluster: str,
    region: str,
    old_score: int | None,
    new_score: int | None,
    new_critical: list[str],
    now: dt.datetime,
    drop_threshold: int = 10,
) -> list[NotificationEvent]:
    """Hook for the readiness poller: a score drop of `drop_threshold`+ points, new critical findings."""
    events = []
    attrs = {"cluster": cluster, "region": region}
    if old_score is not None and new_score is not None and old_score - new_score >= drop_threshold:
        events.append(
            emit(
                session,
                key=f"readiness:{region}/{cluster}:score",
                kind="readiness.score_dropped",
                phase="info",
                title=f"Readiness of {cluster} dropped from {old_score} to {new_score}",
                body=f"Cluster {cluster} ({region}): readiness score {old_score} -> {new_score}.",
                attrs=attrs,
                now=now,
            )
        )
    for check_id in new_critical:
        events.append(
            emit(
                session,
                key=f"readiness:{region}/{cluster}:{check_id}",
                kind="readiness.critical_finding",
                phase="info",
                title=f"New critical finding on {cluster}: {check_id}",
                body=f"Cluster {cluster} ({region}) fails {check_id}.",
                attrs={**attrs, "check": check_id},
                now=now,
            )
        )
    return events


def drill_event(
    session: Session,
    *,
    drill_id: int,
    started: bool,
    outposts: list[str],
    actor: str,
    now: dt.datetime,
) -> NotificationEvent:
    """Hook for the drills feature (issue: drills)."""
    word = "started" if started else "ended"
    return emit(
        session,
        key=f"drill:{drill_id}",
        kind=f"drill.{word}",
        phase="open" if started else "resolved",
        title=f"Disconnect drill #{drill_id} {word}",
        body=f"{actor} {word} a disconnect drill covering {', '.join(outposts) or 'the fleet'}.",
        attrs={"drill_id": drill_id, "outposts": outposts},
        now=now,
    )


def break_glass_sign_in(
    session: Session, *, username: str, address: str, now: dt.datetime
) -> NotificationEvent:
    """Hook for the accounts service (issue 18): a break-glass password sign-in while SSO is on."""
    return emit(
        session,
        key=f"account:{username}:break-glass:{int(now.timestamp())}",
        kind="account.break_glass",
        phase="info",
        title=f"Break-glass sign-in: {username}",
        body=f"{username} signed in with a local password from {address} while single sign-on is on.",
        attrs={"username": username, "address": address},
        now=now,
    )
