"""Server-side browser sessions: the cookie carries a random token, the database its SHA-256.

A session ends at the first of: sign-out, `idle` without a request, `max_age` after sign-in, the
account being disabled or its password reset. Ending it server-side makes a stolen cookie useless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from app.models.account import User, WebSession
from app.models.base import utcnow
from app.services.audit import ClientInfo
from app.settings import Settings

if TYPE_CHECKING:
    from app.db_reader import AnySelect

# last_seen_at is written at most this often, so browsing is not one write per request.
TOUCH_INTERVAL = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(minutes=60)
    max_age: dt.timedelta = dt.timedelta(hours=12)
    reauth_window: dt.timedelta = dt.timedelta(minutes=5)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            max_age=dt.timedelta(hours=settings.session_max_hours),
            reauth_window=dt.timedelta(minutes=settings.reauth_minutes),
        )


@dataclass(frozen=True)
class SignedIn:
    """A live session as every request checks it: a plain row with what the sign-in check, the role
    check, the TOTP hold and the "recently confirmed" test read. What changes the session or reads
    its secrets (confirming the password, sign-out's ID token) loads the row itself
    (`app.web.security.web_session_of`)."""

    id: int
    user_id: int
    username: str
    role: str
    reauth_at: dt.datetime | None
    is_sso: bool
    break_glass: bool
    totp_enabled: bool


# Every request resolves its session with its user: one statement built once, read as plain
# columns. Loading the two ORM objects instead cost about 0.3 ms per request on SQLite and 0.45 ms
# on PostgreSQL, a tenth of a reused page's CPU (issue 20's per-request floor).
_LIVE_BY_TOKEN_HASH = (
    select(
        WebSession.id,
        WebSession.expires_at,
        WebSession.last_seen_at,
        WebSession.reauth_at,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.disabled,
        User.sso_subject.is_not(None).label("is_sso"),
        User.break_glass,
        User.totp_enabled,
    )
    .join(User, User.id == WebSession.user_id)
    .where(WebSession.token_hash == bindparam("token_hash"))
)
_BY_TOKEN_HASH = select(WebSession).where(WebSession.token_hash == bindparam("token_hash"))


def hash_secret(raw: str) -> str:
    """SHA-256 hex: enough for 256-bit random tokens (no dictionary to attack, unlike passwords)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def start_session(
    session: Session,
    user: User,
    *,
    client: ClientInfo,
    policy: SessionPolicy,
    now: dt.datetime | None = None,
) -> tuple[str, WebSession]:
    """Open a session after a successful sign-in; returns the raw cookie value (never stored)."""
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=hash_secret(raw),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.max_age,
        reauth_at=now,
        client_address=(client.address or None) and client.address[:64],
        user_agent=(client.user_agent or None) and client.user_agent[:255],
    )
    session.add(web_session)
    session.flush()
    return raw, web_session


def session_lookup(raw: str) -> tuple[AnySelect, dict[str, str]] | None:
    """The sign-in lookup for a cookie value: its statement and parameters, or None when the value
    cannot be a session's. One statement, read as plain columns, whichever connection runs it (the
    request's session, or the sign-in reader on the event loop: `app.db_reader`)."""
    if not raw or len(raw) > 128:
        return None
    return _LIVE_BY_TOKEN_HASH, {"token_hash": hash_secret(raw)}


def signed_in_from(row: Any, *, policy: SessionPolicy, now: dt.datetime) -> SignedIn | None:
    """The live session a lookup row stands for, or None when it has ended (idle too long, too old,
    user disabled): such a row is for `resolve_session` to delete."""
    if row.expires_at <= now or row.last_seen_at + policy.idle <= now or row.disabled:
        return None
    return SignedIn(
        id=row.id,
        user_id=row.user_id,
        username=row.username,
        role=row.role,
        reauth_at=row.reauth_at,
        is_sso=bool(row.is_sso),
        break_glass=bool(row.break_glass),
        totp_enabled=bool(row.totp_enabled),
    )


def resolve_session(
    session: Session, raw: str, *, policy: SessionPolicy, now: dt.datetime | None = None
) -> SignedIn | None:
    """The live session for a cookie value, or None (unknown, idle too long, too old, user disabled:
    such a row is deleted)."""
    now = now or utcnow()
    lookup = session_lookup(raw)
    if lookup is None:
        return None
    row = session.execute(*lookup).first()
    if row is None:
        return None
    signed_in = signed_in_from(row, policy=policy, now=now)
    if signed_in is None:
        stmt = delete(WebSession).where(WebSession.id == row.id)
        session.execute(stmt.execution_options(synchronize_session=False))
    # last_seen_at is recorded after the request, outside its transaction (record_session_seen).
    return signed_in


def record_session_seen(session: Session, session_id: int, *, now: dt.datetime | None = None) -> bool:
    """Bookkeeping, in its own short transaction: move last_seen_at to `now` unless it was recorded
    less than TOUCH_INTERVAL ago (a conditional UPDATE, so concurrent requests write it once)."""
    now = now or utcnow()
    stmt = (
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.last_seen_at <= now - TOUCH_INTERVAL)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def has_recent_auth(
    web_session: SignedIn | WebSession, *, policy: SessionPolicy, now: dt.datetime | None = None
) -> bool:
    now = now or utcnow()
    return web_session.reauth_at is not None and now - web_session.reauth_at < policy.reauth_window


def confirm_reauth(session: Session, web_session: WebSession, *, now: dt.datetime | None = None) -> None:
    web_session.reauth_at = now or utcnow()
    session.flush()


def end_session(session: Session, raw: str) -> WebSession | None:
    """Sign-out: delete the session row; returns it (for the audit) or None if already gone."""
    web_session = session.scalar(_BY_TOKEN_HASH, {"token_hash": hash_secret(raw)})
    if web_session is not None:
        session.delete(web_session)
        session.flush()
    return web_session


def end_user_sessions(session: Session, user_id: int, *, keep_session_id: int | None = None) -> None:
    stmt = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_session_id is not None:
        stmt = stmt.where(WebSession.id != keep_session_id)
    session.execute(stmt.execution_options(synchronize_session="fetch"))


def purge_expired_sessions(session: Session, *, policy: SessionPolicy, now: dt.datetime | None = None) -> int:
    """Delete sessions past their absolute or idle end; returns how many."""
    now = now or utcnow()
    stmt = delete(WebSession).where(
        (WebSession.expires_at <= now) | (WebSession.last_seen_at <= now - policy.idle)
    )
    return int(session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0)  # type: ignore[attr-defined]
