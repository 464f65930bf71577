"""Channels (configuration sealed with the data key, shown again only as a harmless target), rules
(event kinds -> channel, filtered by Outpost, region, cluster and severity, with reminders) and
quiet periods. Every change is audited. Flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault, VaultError
from app.models.notification import NotificationChannel, NotificationEvent, NotificationRule, QuietPeriod
from app.services.audit import Actor, record_audit
from app.services.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.services.notifications.events import FAMILIES, KINDS, SEVERITIES, severity_rank

CHANNEL_KINDS = ("email", "webhook", "alertmanager", "apprise")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")

NO_VAULT = (
    "Channels keep their URLs and secrets sealed with the data key, and none is configured: set "
    "LIFELINE_DATA_KEY (see `lifeline credentials gen-data-key`)."
)


def _context(channel_id: int) -> str:
    return f"notification-channel:{channel_id}"


channel_context = _context  # public: the data key rotation re-seals channel configs


def _http_url(value: str, field: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field=field, message="an http:// or https:// URL is needed")
    return value


def validate_config(kind: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The channel's configuration, checked, and the target the pages may show (no secret)."""
    if kind == "webhook":
        url = _http_url(str(raw.get("url", "")), "url")
        secret = str(raw.get("secret") or "")
        if secret and len(secret) < 16:
            raise InvalidInput(field="secret", message="an HMAC secret needs at least 16 characters")
        parts = urlsplit(url)
        return {"url": url, "secret": secret or None}, f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    if kind == "alertmanager":
        url = _http_url(str(raw.get("url", "")), "url")
        parts = urlsplit(url)
        bearer = str(raw.get("secret") or "") or None
        return {"url": url, "bearer": bearer}, f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    if kind == "email":
        host = str(raw.get("host", "")).strip()
        if not host:
            raise InvalidInput(field="host", message="the SMTP relay's host name or address is needed")
        try:
            port = int(str(raw.get("port") or 25))
        except ValueError:
            raise InvalidInput(field="port", message="the SMTP port must be a number") from None
        if not 1 <= port <= 65535:
            raise InvalidInput(field="port", message="the SMTP port must be between 1 and 65535")
        sender = str(raw.get("sender", "")).strip()
        if not _EMAIL.match(sender):
            raise InvalidInput(field="sender", message="the From address must look like name@domain")
        recipients_raw = raw.get("recipients", "")
        if isinstance(recipients_raw, str):
            recipients = [r.strip() for r in re.split(r"[,\s]+", recipients_raw) if r.strip()]
        else:
            recipients = [str(r).strip() for r in recipients_raw]
        bad = [r for r in recipients if not _EMAIL.match(r)]
        if not recipients or bad:
            raise InvalidInput(
                field="recipients",
                message=f"not an email address: {', '.join(bad)}" if bad else "add a recipient",
            )
        mode = str(raw.get("mode") or "insecure")
        if mode not in ("insecure", "starttls", "ssl"):
            raise InvalidInput(field="mode", message="use insecure, starttls or ssl")
        config = {
            "host": host,
            "port": port,
            "sender": sender,
            "recipients": recipients,
            "mode": mode,
            "username": str(raw.get("username") or "") or None,
            "password": str(raw.get("secret") or "") or None,
            "verify_tls": str(raw.get("verify_tls", "true")).lower() not in ("false", "0", "no", "off"),
        }
        return config, f"smtp://{host}:{port} -> {', '.join(recipients)}"
    if kind == "apprise":
        from app.integrations.notify import apprise_url_is_valid

        url = str(raw.get("url", "")).strip()
        if not url or not apprise_url_is_valid(url):
            raise InvalidInput(
                field="url", message="Apprise does not recognise this URL (see its wiki for schemes)"
            )
        return {"url": url}, f"{url.split(':', 1)[0]}://…"
    raise InvalidInput(field="kind", message=f"unknown channel kind; use one of {', '.join(CHANNEL_KINDS)}")


def create_channel(
    session: Session,
    vault: Vault | None,
    *,
    name: str,
    kind: str,
    config: Mapping[str, Any],
    actor: Actor,
    now: dt.datetime,
) -> NotificationChannel:
    """Add a channel; its configuration is sealed and never shown again."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInput(field="name", message="1-100 letters, digits, spaces, dots, dashes or underscores")
    if session.scalar(select(NotificationChannel.id).where(NotificationChannel.name == name)):
        raise Conflict(f"a channel named {name!r} exists already", field="name")
    checked, target = validate_config(kind, config)
    if vault is None:
        # Switched off by configuration (a Conflict, 409), not an outage.
        raise Conflict(NO_VAULT)
    channel = NotificationChannel(
        name=name,
        kind=kind,
        target=target[:500],
        sealed_config="",
        enabled=True,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    session.flush()
    channel.sealed_config = vault.seal(json.dumps(checked).encode(), context=_context(channel.id))
    record_audit(
        session,
        actor=actor,
        action="notification.channel.create",
        target=f"channel:{name}",
        details={"kind": kind, "target": channel.target},
        now=now,
    )
    session.flush()
    return channel


def open_config(vault: Vault | None, channel: NotificationChannel) -> dict[str, Any]:
    if vault is None:
        raise Unavailable(NO_VAULT)
    try:
        config: dict[str, Any] = json.loads(vault.open(channel.sealed_config, context=_context(channel.id)))
    except VaultError as exc:
        raise Unavailable(f"channel {channel.name}: {exc}") from None
    return config


def get_channel(session: Session, channel_id: int) -> NotificationChannel:
    channel = session.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"no notification channel #{channel_id}")
    return channel


def list_channels(session: Session) -> list[NotificationChannel]:
    return list(session.scalars(select(NotificationChannel).order_by(NotificationChannel.name)))


def set_channel_enabled(
    session: Session, channel: NotificationChannel, enabled: bool, *, actor: Actor, now: dt.datetime
) -> None:
    """Disable (pending deliveries are cancelled, not kept for later) or enable a channel."""
    from app.models.notification import NotificationDelivery

    channel.enabled = enabled
    channel.updated_at = now
    cancelled = 0
    if not enabled:
        for delivery in session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.channel_id == channel.id, NotificationDelivery.status == "pending"
            )
        ):
            delivery.status = "cancelled"
            delivery.last_error = f"channel disabled by {actor.name}"
            cancelled += 1
    record_audit(
        session,
        actor=actor,
        action="notification.channel.enable" if enabled else "notification.channel.disable",
        target=f"channel:{channel.name}",
        details={"cancelled_deliveries": cancelled},
        now=now,
    )
    session.flush()


def delete_channel(session: Session, channel: NotificationChannel, *, actor: Actor, now: dt.datetime) -> None:
    record_audit(
        session, actor=actor, action="notification.channel.delete", target=f"channel:{channel.name}", now=now
    )
    session.delete(channel)
    session.flush()


# ---------------------------------------------------------------- rules


def _names(values: Sequence[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = re.split(r"[,\s]+", values)
    return sorted({v.strip() for v in values if v and v.strip()})


def create_rule(
    session: Session,
    *,
    name: str,
    channel_id: int,
    event_kinds: Sequence[str] | str | None = None,
    outposts: Sequence[str] | str | None = None,
    regions: Sequence[str] | str | None = None,
    clusters: Sequence[str] | str | None = None,
    min_severity: str = "info",
    reminder_minutes: int | None = None,
    during_drill: str = "label",
    actor: Actor,
    now: dt.datetime,
) -> NotificationRule:
    """Route event kinds (or families: `outpost`) to a channel; empty filters match everything."""
    name = name.strip()
    errors: dict[str, str] = {}
    if not _NAME.match(name):
        errors["name"] = "1-100 letters, digits, spaces, dots, dashes or underscores"
    elif session.scalar(select(NotificationRule.id).where(NotificationRule.name == name)):
        errors["name"] = f"a rule named {name!r} exists already"
    channel = session.get(NotificationChannel, channel_id)
    if channel is None:
        errors["channel_id"] = f"no channel #{channel_id}"
    kinds = _names(event_kinds)
    unknown = [k for k in kinds if k not in KINDS and k not in FAMILIES]
    if unknown:
        errors["event_kinds"] = (
            f"unknown event kind {', '.join(unknown)}; known: {', '.join(FAMILIES)} or a kind"
        )
    if min_severity not in SEVERITIES:
        errors["min_severity"] = f"use one of {', '.join(SEVERITIES)}"
    if reminder_minutes is not None and not 1 <= reminder_minutes <= 7 * 24 * 60:
        errors["reminder_minutes"] = "between 1 minute and 7 days (10080), or empty for no reminders"
    if during_drill not in ("label", "quiet"):
        errors["during_drill"] = "label (send, marked as a drill) or quiet (hold back while a drill runs)"
    if errors:
        raise InvalidInput(errors=errors)
    rule = NotificationRule(
        name=name,
        channel_id=channel_id,
        event_kinds=kinds,
        outposts=_names(outposts),
        regions=_names(regions),
        clusters=_names(clusters),
        min_severity=min_severity,
        reminder_minutes=reminder_minutes,
        during_drill=during_drill,
        enabled=True,
        created_by=actor.name,
        created_at=now,
    )
    session.add(rule)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="notification.rule.create",
        target=f"rule:{name}",
        details={
            "channel": channel.name if channel else None,
            "kinds": kinds,
            "outposts": rule.outposts,
            "regions": rule.regions,
            "clusters": rule.clusters,
            "min_severity": min_severity,
            "reminder_minutes": reminder_minutes,
            "during_drill": during_drill,
        },
        now=now,
    )
    return rule


def list_rules(session: Session) -> list[NotificationRule]:
    return list(session.scalars(select(NotificationRule).order_by(NotificationRule.name)))


def get_rule(session: Session, rule_id: int) -> NotificationRule:
    rule = session.get(NotificationRule, rule_id)
    if rule is None:
        raise NotFound(f"no notification rule #{rule_id}")
    return rule


def set_rule_enabled(
    session: Session, rule: NotificationRule, enabled: bool, *, actor: Actor, now: dt.datetime
) -> None:
    rule.enabled = enabled
    record_audit(
        session,
        actor=actor,
        action="notification.rule.enable" if enabled else "notification.rule.disable",
        target=f"rule:{rule.name}",
        now=now,
    )
    session.flush()


def delete_rule(session: Session, rule: NotificationRule, *, actor: Actor, now: dt.datetime) -> None:
    record_audit(session, actor=actor, action="notification.rule.delete", target=f"rule:{rule.name}", now=now)
    session.delete(rule)
    session.flush()


def rule_matches(rule: NotificationRule, event: NotificationEvent) -> bool:
    """Does this rule take this event? (kinds or families, Outpost, region, cluster, severity)"""
    family = event.kind.split(".", 1)[0]
    if rule.event_kinds and event.kind not in rule.event_kinds and family not in rule.event_kinds:
        return False
    if severity_rank(event.severity) < severity_rank(rule.min_severity):
        return False
    attrs = event.attrs or {}
    if rule.outposts and attrs.get("outpost") not in rule.outposts:
        return False
    if rule.regions and attrs.get("region") not in rule.regions:
        return False
    if rule.clusters:
        clusters = set(attrs.get("clusters") or []) | ({attrs["cluster"]} if attrs.get("cluster") else set())
        if not clusters & set(rule.clusters):
            return False
    return True


# ---------------------------------------------------------------- quiet periods


def create_quiet_period(
    session: Session,
    *,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    outposts: Sequence[str] | str | None = None,
    actor: Actor,
    now: dt.datetime,
) -> QuietPeriod:
    """Hold back notifications (recorded as suppressed in the delivery log) during a drill or maintenance."""
    errors = {}
    if ends_at <= starts_at:
        errors["ends_at"] = "the end must be after the start"
    elif ends_at - starts_at > dt.timedelta(days=14):
        errors["ends_at"] = "a quiet period lasts at most 14 days"
    if not reason.strip():
        errors["reason"] = "say why (drill, maintenance window...)"
    if errors:
        raise InvalidInput(errors=errors)
    period = QuietPeriod(
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip()[:200],
        outposts=_names(outposts),
        created_by=actor.name,
        created_at=now,
    )
    session.add(period)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="notification.quiet.create",
        target=f"quiet:{period.id}",
        details={
            "starts_at": starts_at,
            "ends_at": ends_at,
            "reason": period.reason,
            "outposts": period.outposts,
        },
        now=now,
    )
    return period


def list_quiet_periods(session: Session, now: dt.datetime) -> list[QuietPeriod]:
    return list(
        session.scalars(select(QuietPeriod).where(QuietPeriod.ends_at > now).order_by(QuietPeriod.starts_at))
    )


def delete_quiet_period(session: Session, period_id: int, *, actor: Actor, now: dt.datetime) -> None:
    period = session.get(QuietPeriod, period_id)
    if period is None:
        raise NotFound(f"no quiet period #{period_id}")
    record_audit(
        session, actor=actor, action="notification.quiet.delete", target=f"quiet:{period.id}", now=now
    )
    session.delete(period)
    session.flush()


def quiet_reason(session: Session, event: NotificationEvent, now: dt.datetime) -> str | None:
    """The reason of a quiet period covering this event now, or None."""
    outpost = (event.attrs or {}).get("outpost")
    for period in session.scalars(
        select(QuietPeriod).where(QuietPeriod.starts_at <= now, QuietPeriod.ends_at > now)
    ):
        if not period.outposts or outpost in period.outposts:
            return period.reason
    return None
