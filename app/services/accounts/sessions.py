"""Server-side browser sessions: the cookie carries a random token, the database its SHA-256.

A session ends at the first of: sign-out, `idle` without a request, `max_age` after sign-in, the
account being disabled or its password reset. Ending it server-side makes a stolen cookie useless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, joinedload

from app.models.account import User, WebSession
from app.models.base import utcnow
from app.services.audit import ClientInfo
from app.settings import Settings

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


# Every request resolves its session, and the user always comes with it (one round trip). The
# statement is built once: building it per request (select, options, where) cost as much as the
# ORM's loading of the row (issue 20's per-request floor).
_BY_TOKEN_HASH = (
    select(WebSession)
    .options(joinedload(WebSession.user))
    .where(WebSession.token_hash == bindparam("token_hash"))
)


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


def resolve_session(
    session: Session, raw: str, *, policy: SessionPolicy, now: dt.datetime | None = None
) -> WebSession | None:
    """The live session for a cookie value, or None (unknown, idle too long, too old, user disabled)."""
    now = now or utcnow()
    if not raw or len(raw) > 128:
        return None
    web_session = session.scalar(_BY_TOKEN_HASH, {"token_hash": hash_secret(raw)})
    if web_session is None:
        return None
    expired = web_session.expires_at <= now or web_session.last_seen_at + policy.idle <= now
    if expired or web_session.user.disabled:
        session.delete(web_session)
        session.flush()
        return None
    # last_seen_at is recorded after the request, outside its transaction (record_session_seen).
    return web_session


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
    web_session: WebSession, *, policy: SessionPolicy, now: dt.datetime | None = None
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
