"""The audit trail: `record_audit` for every feature, and the filtered queries behind /audit.

Details never carry a password, token or key: `record_audit` drops keys that name one and masks
values that look like one, so a careless caller cannot leak a secret into the trail.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.models.audit import AuditEvent
from app.models.base import utcnow


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from: the client address and its user agent (either may be unknown)."""

    address: str | None = None
    user_agent: str | None = None


class Via:
    """How an actor reached Lifeline; recorded as `via` in an event's details (not in its actor)."""

    browser = "browser"
    token = "token"  # noqa: S105 (a channel name, not a secret)
    cli = "cli"
    system = "system"


@dataclass(frozen=True)
class Actor:
    """Who acts, as every service and the audit trail see it: one spelling per person.

    `name` is what the trail's actor column says: the account name for a person whether they used
    the browser or an API token (so filtering by a person finds everything they did), `cli:<os
    user>` from the server's command line, `lifeline` for the scheduler. How they came is `via`.
    """

    name: str
    user_id: int | None = None
    role: str | None = None
    via: str = Via.browser
    token_id: int | None = None
    client: ClientInfo | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def cli(cls) -> Actor:
        """The actor of a `lifeline` command run on the server: `cli:` + the operating-system user."""
        try:
            user = getpass.getuser()
        except Exception:  # no user name in the environment (some containers)
            user = "unknown"
        return cls(name=f"cli:{user}", role="admin", via=Via.cli)

    def details(self) -> dict[str, Any]:
        """What the trail keeps about how the actor came (nothing for a plain browser session)."""
        if self.via == Via.token:
            return {"via": Via.token, "token_id": self.token_id}
        if self.via in (Via.cli, Via.system):
            return {"via": self.via}
        return {}


SYSTEM = Actor(name="lifeline", role="admin", via=Via.system)


class Outcome:
    success = "success"
    failure = "failure"
    denied = "denied"


REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"pass(word|phrase)?|secret|private|^token$|_token$|^key$|_key$|kubeconfig|pem", re.I
)
_SECRET_VALUE = re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)|\bllt_[A-Za-z0-9_-]{20,}")


def _harmless(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float)


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        # A secret-sounding key is masked unless its value cannot be a secret (a flag, a number).
        return {
            str(k): _scrub(v) if not _SECRET_KEY.search(str(k)) or _harmless(v) else REDACTED
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return REDACTED if _SECRET_VALUE.search(value) else value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def record_audit(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target: str,
    outcome: str = Outcome.success,
    client: ClientInfo | None = None,
    details: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Append one audit event (flushed, committed with the caller's transaction).

    `action` is a dotted verb such as `auth.sign_in` or `credential.download`; `target` names what
    was acted on (`user:alice`, `cluster:us-west-2/edge-1`); `outcome` is success, failure or denied.
    """
    client = client or actor.client or ClientInfo()
    details = {**actor.details(), **(details or {})}
    event = AuditEvent(
        occurred_at=now or utcnow(),
        actor=actor.name[:128],
        client_address=(client.address or None) and client.address[:64],
        user_agent=(client.user_agent or None) and client.user_agent[:255],
        action=action[:64],
        target=target[:255],
        outcome=outcome[:16],
        details=_scrub(dict(details or {})),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class AuditFilter:
    """Filters of the audit page and API; empty fields match everything."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.actor:
            stmt = stmt.where(AuditEvent.actor == self.actor)
        if self.action:
            # "credential" matches credential.issue, credential.download, ...
            stmt = stmt.where(
                (AuditEvent.action == self.action)
                | AuditEvent.action.startswith(self.action.rstrip(".") + ".")
            )
        if self.target:
            stmt = stmt.where(AuditEvent.target.contains(self.target, autoescape=True))
        if self.outcome:
            stmt = stmt.where(AuditEvent.outcome == self.outcome)
        if self.since:
            stmt = stmt.where(AuditEvent.occurred_at >= self.since)
        if self.until:
            stmt = stmt.where(AuditEvent.occurred_at < self.until)
        return stmt


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_audit_events(
    session: Session, audit_filter: AuditFilter, *, page: int = 1, per_page: int = 50
) -> AuditPage:
    """One page of events, newest first."""
    page = max(1, page)
    total = session.scalar(audit_filter.apply(select(func.count()).select_from(AuditEvent))) or 0
    stmt = (
        audit_filter.apply(select(AuditEvent))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return AuditPage(list(session.scalars(stmt)), total, page, per_page)


def iter_audit_events(
    session: Session, audit_filter: AuditFilter, *, batch: int = 1000
) -> Iterator[AuditEvent]:
    """Every matching event, newest first, fetched in batches (for the CSV export)."""
    stmt = audit_filter.apply(select(AuditEvent)).order_by(
        AuditEvent.occurred_at.desc(), AuditEvent.id.desc()
    )
    yield from session.scalars(stmt.execution_options(yield_per=batch))


def list_audit_actions(session: Session) -> list[str]:
    """Distinct actions seen so far (for the filter's suggestions)."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
