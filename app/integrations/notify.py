"""Sending one notification: Apprise for any Apprise URL, SMTP for email, and two webhooks we sign
ourselves (a generic JSON body with an HMAC-SHA256 header, and Alertmanager's webhook payload).

Every sender raises `DeliveryError` with a message safe to store (no secret in it) or returns.
Webhooks carry `Idempotency-Key`, the same on every retry, so a receiver can drop a repeat.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Lifeline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "OutpostLifeline-Notify/1"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


class DeliveryError(Exception):
    """The channel refused or could not be reached; the message names which and why."""


@dataclass(frozen=True)
class Message:
    """What one delivery sends, whatever the channel."""

    event_id: int
    key: str
    kind: str
    phase: str  # open | resolved | reminder | info
    severity: str
    title: str
    body: str
    occurred_at: dt.datetime
    idempotency_key: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    opening_event_id: int | None = None
    opened_at: dt.datetime | None = None
    # The idempotency key of the delivery of the opening event on this channel (threads email).
    opening_idempotency_key: str | None = None
    dashboard_url: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "version": "1",
            "event_id": self.event_id,
            "key": self.key,
            "kind": self.kind,
            "phase": self.phase,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "occurred_at": self.occurred_at.isoformat(),
            "opening_event_id": self.opening_event_id,
            "attrs": dict(self.attrs),
            "idempotency_key": self.idempotency_key,
            "dashboard_url": self.dashboard_url,
        }


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`; the timestamp stops replays."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance_seconds: int = 300) -> bool:
    """Check a `X-Lifeline-Signature` header (receivers can copy this function)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


@functools.lru_cache(maxsize=8)
def _client(timeouts: Timeouts) -> httpx.Client:
    # One client per timeout setting: keeps connections alive and builds the TLS context once
    # (building one costs ~0.1 s, more than a loopback delivery).
    return httpx.Client(timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect))


def _post(url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts) -> None:
    try:
        response = _client(timeouts).post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{_host(url)}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"{_host(url)} answered HTTP {response.status_code}: {response.text[:200]}")


def _host(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except Exception:
        return "webhook"
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}"


def send_webhook(url: str, secret: str | None, message: Message, timeouts: Timeouts = Timeouts()) -> None:
    """POST the event as JSON, signed with HMAC-SHA256 when the channel has a secret."""
    body = json.dumps(message.as_json(), separators=(",", ":"), sort_keys=True).encode()
    headers = {IDEMPOTENCY_HEADER: message.idempotency_key, "X-Lifeline-Event": message.kind}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
    _post(url, body, headers, timeouts)


def alertmanager_payload(message: Message, receiver: str) -> dict[str, Any]:
    """The body Alertmanager sends to a webhook receiver (version 4), one alert per message."""
    resolved = message.phase == "resolved"
    labels = {
        "alertname": message.kind.replace(".", "_"),
        "severity": message.severity,
        "lifeline_key": message.key,
        **{k: str(v) for k, v in message.attrs.items() if k in ("outpost", "region", "cluster") and v},
    }
    annotations = {"summary": message.title, "description": message.body}
    started = message.opened_at or message.occurred_at
    alert = {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": started.isoformat(),
        "endsAt": message.occurred_at.isoformat() if resolved else ZERO_TIME,
        "generatorURL": message.dashboard_url,
        "fingerprint": hashlib.sha256(message.key.encode()).hexdigest()[:16],
    }
    return {
        "version": "4",
        "groupKey": f"{{}}:{{lifeline_key={json.dumps(message.key)}}}",
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": receiver,
        "groupLabels": {"lifeline_key": message.key},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": message.dashboard_url,
        "alerts": [alert],
    }


def send_alertmanager(
    url: str, bearer: str | None, receiver: str, message: Message, timeouts: Timeouts = Timeouts()
) -> None:
    """POST Alertmanager's webhook payload (firing, or resolved for a resolved event)."""
    body = json.dumps(alertmanager_payload(message, receiver), separators=(",", ":")).encode()
    headers = {IDEMPOTENCY_HEADER: message.idempotency_key}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    _post(url, body, headers, timeouts)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    mode: str = "insecure"  # insecure | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_tls: bool = True


def _message_id(idempotency_key: str) -> str:
    return f"<{idempotency_key}@lifeline.invalid>"


def build_email(config: SmtpConfig, message: Message) -> EmailMessage:
    """The email: Message-ID from the idempotency key (a repeat is recognisable), and a resolved or
    reminder mail answers the opening one (In-Reply-To/References), so mail clients thread them."""
    mail = EmailMessage()
    prefix = {"resolved": "[RESOLVED] ", "reminder": "[REMINDER] "}.get(message.phase, "")
    mail["Subject"] = f"{prefix}[{message.severity.upper()}] {message.title}"
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.recipients)
    mail["Date"] = format_datetime(message.occurred_at)
    mail["Message-ID"] = _message_id(message.idempotency_key)
    if message.opening_idempotency_key:
        mail["In-Reply-To"] = _message_id(message.opening_idempotency_key)
        mail["References"] = _message_id(message.opening_idempotency_key)
    mail["X-Lifeline-Key"] = message.key
    text = message.body
    if message.dashboard_url:
        text += f"\n\n{message.dashboard_url}"
    mail.set_content(text)
    return mail


def send_email(config: SmtpConfig, message: Message, timeouts: Timeouts = Timeouts()) -> None:
    """Send through an SMTP relay (an on-prem relay keeps working while the Region is away)."""
    mail = build_email(config, message)
    context = None
    if config.mode != "insecure":
        context = ssl.create_default_context()
        if not config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    timeout = timeouts.connect + timeouts.read
    try:
        smtp: smtplib.SMTP
        if config.mode == "ssl":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
        with smtp:
            if config.mode == "starttls":
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}") from None


def send_apprise(url: str, message: Message) -> None:
    """Any Apprise URL (Slack, Teams, PagerDuty, Opsgenie, Matrix, ntfy...). Apprise reports failure by
    returning False and logging; we turn that into DeliveryError."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("Apprise does not recognise this URL")
    notify_type = {
        "critical": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
    }.get(message.severity, apprise.NotifyType.INFO)
    if message.phase == "resolved":
        notify_type = apprise.NotifyType.SUCCESS
    prefix = {"resolved": "[RESOLVED] ", "reminder": "[REMINDER] "}.get(message.phase, "")
    if not notifier.notify(title=prefix + message.title, body=message.body, notify_type=notify_type):
        raise DeliveryError("Apprise could not deliver (see the server log for the service's answer)")


def apprise_url_is_valid(url: str) -> bool:
    import apprise

    return bool(apprise.Apprise().add(url))
