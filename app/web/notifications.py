"""HTTP routes for notifications: the page (channels, rules, quiet periods, recent events), the
delivery log of one event, and /api/v1/notifications.

Responders read the event log (what reached on-call, what is stuck and why); admins add, test and
disable channels, and manage rules and quiet periods. Every change is audited by the services.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.jobs.notifications import vault_from_settings
from app.models.notification import NotificationChannel, NotificationEvent, NotificationRule
from app.services.errors import InvalidInput, NotFound, ServiceError
from app.services.notifications import delivery, outbox, rules
from app.services.notifications.events import FAMILIES, KINDS, SEVERITIES
from app.settings import Settings
from app.web.deps import AppSettings, DbSession, RowId
from app.web.forms import FormState
from app.web.security import Admin, Principal, Responder, Role, actor_of, now_utc
from app.web.templating import redirect_after_post, render

router = APIRouter()


def _context(
    request: Request, session: Session, settings: Settings, principal: Principal, **extra: Any
) -> dict[str, Any]:
    now = now_utc(request)
    context: dict[str, Any] = {
        "channels": rules.list_channels(session),
        "rules": rules.list_rules(session),
        "quiet_periods": rules.list_quiet_periods(session, now),
        "events": outbox.list_events(session, limit=50),
        "backlog": outbox.backlog(session),
        "kinds": KINDS,
        "families": FAMILIES,
        "severities": SEVERITIES,
        "channel_kinds": rules.CHANNEL_KINDS,
        "has_data_key": vault_from_settings(settings) is not None,
        "can_edit": principal.can(Role.admin),
        "notice": request.query_params.get("notice", "")[:200],
        "channel_form": FormState(),
        "rule_form": FormState(),
        "quiet_form": FormState(),
        "now": now,
    }
    context.update(extra)
    return context


def _done(request: Request, notice: str) -> Response:
    return redirect_after_post(
        request, str(request.url_for("notifications.index")) + "?notice=" + quote(notice)
    )


def _refused(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    form: str,
    values: dict[str, str],
    exc: ServiceError,
) -> Response:
    from app.web.errors import status_for

    session.rollback()
    context = _context(request, session, settings, principal, **{form: FormState.refused(values, exc)})
    return render(request, "notifications/index.html", context, status_code=status_for(exc))


@router.get("/notifications", name="notifications.index")
def notifications_page(
    request: Request, session: DbSession, settings: AppSettings, principal: Responder
) -> Response:
    """Channels, rules, quiet periods and the latest events with their delivery status."""
    return render(request, "notifications/index.html", _context(request, session, settings, principal))


@router.get("/notifications/events/{event_id}", name="notifications.event")
def event_page(request: Request, session: DbSession, event_id: RowId, principal: Responder) -> Response:
    """The delivery log of one event: per channel, attempts, last error, delivered at."""
    event = outbox.get_event(session, event_id)
    if event is None:
        raise NotFound(f"no notification event #{event_id}")
    opening = outbox.get_event(session, event.opening_event_id) if event.opening_event_id else None
    return render(request, "notifications/event.html", {"event": event, "opening": opening})


@router.post("/notifications/channels", name="notifications.add_channel")
def add_channel_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    sender: Annotated[str, Form()] = "",
    recipients: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "insecure",
    username: Annotated[str, Form()] = "",
) -> Response:
    values = {
        "name": name,
        "kind": kind,
        "url": url,
        "host": host,
        "port": port,
        "sender": sender,
        "recipients": recipients,
        "mode": mode,
        "username": username,
    }  # never the secret
    config = {**values, "secret": secret}
    try:
        channel = rules.create_channel(
            session,
            vault_from_settings(settings),
            name=name,
            kind=kind,
            config=config,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        return _refused(request, session, settings, principal, "channel_form", values, exc)
    return _done(
        request, f"Added channel {channel.name}. Its secrets are sealed and will not be shown again."
    )


@router.post("/notifications/channels/{channel_id}/test", name="notifications.test_channel")
def test_channel_form(
    request: Request, session: DbSession, settings: AppSettings, channel_id: RowId, principal: Admin
) -> Response:
    channel = rules.get_channel(session, channel_id)
    ok, error = delivery.send_test(
        session,
        vault_from_settings(settings),
        channel,
        actor=actor_of(principal, request),
        now=now_utc(request),
        dashboard_url=settings.base_url,
    )
    return _done(
        request, f"Test message sent to {channel.name}." if ok else f"Test to {channel.name} failed: {error}"
    )


@router.post("/notifications/channels/{channel_id}/enabled", name="notifications.toggle_channel")
def toggle_channel_form(
    request: Request,
    session: DbSession,
    channel_id: RowId,
    principal: Admin,
    enabled: Annotated[str, Form()] = "false",
) -> Response:
    channel = rules.get_channel(session, channel_id)
    on = enabled == "true"
    rules.set_channel_enabled(session, channel, on, actor=actor_of(principal, request), now=now_utc(request))
    return _done(request, f"Channel {channel.name} {'enabled' if on else 'disabled'}.")


@router.post("/notifications/rules", name="notifications.add_rule")
def add_rule_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    name: Annotated[str, Form()] = "",
    channel_id: Annotated[str, Form()] = "",
    event_kinds: Annotated[str, Form()] = "",
    outposts: Annotated[str, Form()] = "",
    regions: Annotated[str, Form()] = "",
    clusters: Annotated[str, Form()] = "",
    min_severity: Annotated[str, Form()] = "info",
    reminder_minutes: Annotated[str, Form()] = "",
    during_drill: Annotated[str, Form()] = "label",
) -> Response:
    values = {
        "name": name,
        "channel_id": channel_id,
        "event_kinds": event_kinds,
        "outposts": outposts,
        "regions": regions,
        "clusters": clusters,
        "min_severity": min_severity,
        "reminder_minutes": reminder_minutes,
        "during_drill": during_drill,
    }
    try:
        if not channel_id.isdigit():
            raise InvalidInput(field="channel_id", message="choose a channel")
        if reminder_minutes and not reminder_minutes.isdigit():
            raise InvalidInput(field="reminder_minutes", message="a whole number of minutes, or empty")
        rule = rules.create_rule(
            session,
            name=name,
            channel_id=int(channel_id),
            event_kinds=event_kinds,
            outposts=outposts,
            regions=regions,
            clusters=clusters,
            min_severity=min_severity,
            reminder_minutes=int(reminder_minutes) if reminder_minutes else None,
            during_drill=during_drill,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        return _refused(request, session, settings, principal, "rule_form", values, exc)
    return _done(request, f"Added rule {rule.name}.")


@router.post("/notifications/rules/{rule_id}/delete", name="notifications.delete_rule")
def delete_rule_form(request: Request, session: DbSession, rule_id: RowId, principal: Admin) -> Response:
    rule = rules.get_rule(session, rule_id)
    rules.delete_rule(session, rule, actor=actor_of(principal, request), now=now_utc(request))
    return _done(request, f"Removed rule {rule.name}.")


@router.post("/notifications/quiet", name="notifications.add_quiet")
def add_quiet_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    minutes: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    outposts: Annotated[str, Form()] = "",
) -> Response:
    values = {"minutes": minutes, "reason": reason, "outposts": outposts}
    now = now_utc(request)
    try:
        if not minutes.isdigit() or int(minutes) < 1:
            raise InvalidInput(field="minutes", message="how many minutes from now, at least 1")
        rules.create_quiet_period(
            session,
            starts_at=now,
            ends_at=now + dt.timedelta(minutes=int(minutes)),
            reason=reason,
            outposts=outposts,
            actor=actor_of(principal, request),
            now=now,
        )
    except ServiceError as exc:
        return _refused(request, session, settings, principal, "quiet_form", values, exc)
    return _done(request, f"Notifications held back for {minutes} minutes.")


# ---------------------------------------------------------------- JSON API


class ChannelIn(BaseModel):
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    config: dict[str, Any]


class RuleIn(BaseModel):
    name: str = Field(max_length=100)
    channel_id: int = Field(ge=1, le=2_147_483_647)
    event_kinds: list[str] = []
    outposts: list[str] = []
    regions: list[str] = []
    clusters: list[str] = []
    min_severity: str = "info"
    reminder_minutes: int | None = None
    # While a drill runs on the Outpost: `label` sends, marked as a drill; `quiet` holds back.
    during_drill: Literal["label", "quiet"] = "label"


def _channel_out(channel: NotificationChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind,
        "target": channel.target,
        "enabled": channel.enabled,
        "created_by": channel.created_by,
    }


def _rule_out(rule: NotificationRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "channel_id": rule.channel_id,
        "event_kinds": rule.event_kinds,
        "outposts": rule.outposts,
        "regions": rule.regions,
        "clusters": rule.clusters,
        "min_severity": rule.min_severity,
        "reminder_minutes": rule.reminder_minutes,
        "during_drill": rule.during_drill,
        "enabled": rule.enabled,
    }


def _event_out(event: NotificationEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "key": event.key,
        "kind": event.kind,
        "phase": event.phase,
        "severity": event.severity,
        "title": event.title,
        "body": event.body,
        "attrs": event.attrs,
        "occurred_at": event.occurred_at.isoformat(),
        "opening_event_id": event.opening_event_id,
        "deliveries": [
            {
                "channel": d.channel.name,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
                "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            }
            for d in event.deliveries
        ],
    }


@router.get("/api/v1/notifications/events", name="notifications.api_events")
def api_events(session: DbSession, principal: Responder) -> dict[str, Any]:
    return {
        "events": [_event_out(e) for e in outbox.list_events(session, limit=100)],
        "backlog": outbox.backlog(session),
    }


@router.get("/api/v1/notifications/events/{event_id}", name="notifications.api_event")
def api_event(session: DbSession, event_id: RowId, principal: Responder) -> dict[str, Any]:
    event = outbox.get_event(session, event_id)
    if event is None:
        raise NotFound(f"no notification event #{event_id}")
    return _event_out(event)


@router.get("/api/v1/notifications/channels", name="notifications.api_channels")
def api_channels(session: DbSession, principal: Responder) -> dict[str, Any]:
    return {
        "channels": [_channel_out(c) for c in rules.list_channels(session)],
        "rules": [_rule_out(r) for r in rules.list_rules(session)],
    }


@router.post("/api/v1/notifications/channels", name="notifications.api_add_channel", status_code=201)
def api_add_channel(
    request: Request, session: DbSession, settings: AppSettings, body: ChannelIn, principal: Admin
) -> dict[str, Any]:
    channel = rules.create_channel(
        session,
        vault_from_settings(settings),
        name=body.name,
        kind=body.kind,
        config=body.config,
        actor=actor_of(principal, request),
        now=now_utc(request),
    )
    return _channel_out(channel)


@router.post("/api/v1/notifications/channels/{channel_id}/test", name="notifications.api_test_channel")
def api_test_channel(
    request: Request, session: DbSession, settings: AppSettings, channel_id: RowId, principal: Admin
) -> dict[str, Any]:
    channel = rules.get_channel(session, channel_id)
    ok, error = delivery.send_test(
        session,
        vault_from_settings(settings),
        channel,
        actor=actor_of(principal, request),
        now=now_utc(request),
        dashboard_url=settings.base_url,
    )
    return {"sent": ok, "error": error}


@router.post("/api/v1/notifications/rules", name="notifications.api_add_rule", status_code=201)
def api_add_rule(request: Request, session: DbSession, body: RuleIn, principal: Admin) -> dict[str, Any]:
    rule = rules.create_rule(
        session,
        name=body.name,
        channel_id=body.channel_id,
        event_kinds=body.event_kinds,
        outposts=body.outposts,
        regions=body.regions,
        clusters=body.clusters,
        min_severity=body.min_severity,
        reminder_minutes=body.reminder_minutes,
        during_drill=body.during_drill,
        actor=actor_of(principal, request),
        now=now_utc(request),
    )
    return _rule_out(rule)
