"""Personal API tokens: `llt_` + 256 random bits, shown once, stored as SHA-256, carrying the owner's role.

SHA-256 (not Argon2) is right here: the token is high-entropy, so there is nothing to brute-force,
and every API request verifies one; the hash is looked up through a unique index.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from app.models.account import ApiToken, User
from app.models.base import utcnow
from app.services.accounts.sessions import hash_secret
from app.services.accounts.users import AccountError
from app.services.audit import Actor, record_audit

if TYPE_CHECKING:
    from app.db_reader import AnySelect

TOKEN_PREFIX = "llt_"  # noqa: S105 (a public marker, not a secret)
PREFIX_LENGTH = 12
MAX_EXPIRY_DAYS = 3650
LAST_USED_INTERVAL = dt.timedelta(seconds=60)


def create_token(
    session: Session,
    user: User,
    *,
    name: str,
    expires_in_days: int | None,
    actor: Actor,
    now: dt.datetime | None = None,
) -> tuple[str, ApiToken]:
    """Create a token for `user`; returns the raw token, which is never stored or shown again."""
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("Give the token a name of 1-100 characters (what uses it).", "name")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise AccountError(
            f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days (or none).", "expires_in_days"
        )
    if user.disabled:
        raise AccountError(f"The account {user.username!r} is disabled.", "user")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        token_hash=hash_secret(raw),
        prefix=raw[:PREFIX_LENGTH],
        user_id=user.id,
        name=name,
        created_at=now,
        expires_at=now + dt.timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="token.create",
        target=f"user:{user.username}",
        details={
            "token_id": token.id,
            "token_prefix": token.prefix,
            "name": name,
            "expires_at": token.expires_at,
        },
        now=now,
    )
    return raw, token


@dataclass(frozen=True)
class LiveToken:
    """A live token as every API call checks it: a plain row (token and owner)."""

    id: int
    user_id: int
    username: str
    role: str


# Every API call resolves its token with its owner: one statement built once, read as plain columns
# (loading the two ORM objects cost a tenth of a reused answer's CPU).
_LIVE_BY_TOKEN_HASH = (
    select(
        ApiToken.id,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.disabled,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def token_lookup(raw: str) -> tuple[AnySelect, dict[str, str]] | None:
    """The lookup for a bearer value: its statement and parameters, or None when the value cannot
    be a token's (see `sessions.session_lookup`)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        return None
    return _LIVE_BY_TOKEN_HASH, {"token_hash": hash_secret(raw)}


def live_token_from(row: Any, *, now: dt.datetime) -> LiveToken | None:
    """The live token a lookup row stands for, or None (revoked, expired, owner disabled)."""
    if row.revoked_at is not None or row.disabled:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return LiveToken(id=row.id, user_id=row.user_id, username=row.username, role=row.role)


def resolve_token(session: Session, raw: str, *, now: dt.datetime | None = None) -> LiveToken | None:
    """The live token for a bearer value (not revoked, not expired, owner enabled), or None."""
    lookup = token_lookup(raw)
    if lookup is None:
        return None
    row = session.execute(*lookup).first()
    # last_used_at is recorded after the request, outside its transaction (record_token_used).
    return None if row is None else live_token_from(row, now=now or utcnow())


def record_token_used(session: Session, token_id: int, *, now: dt.datetime | None = None) -> bool:
    """Bookkeeping, in its own short transaction: move last_used_at to `now` unless it was recorded
    less than LAST_USED_INTERVAL ago (a conditional UPDATE, so 50 clients sharing a token write once)."""
    now = now or utcnow()
    stmt = (
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_INTERVAL),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def list_tokens(session: Session, *, user_id: int | None = None) -> Sequence[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return session.scalars(stmt).all()


def get_token_or_none(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def find_tokens(session: Session, ref: str) -> Sequence[ApiToken]:
    """Tokens matching an id or a prefix (`llt_AbCd1234`), for the CLI."""
    if ref.isdigit():
        token = session.get(ApiToken, int(ref))
        return [token] if token else []
    return session.scalars(select(ApiToken).where(ApiToken.prefix.startswith(ref, autoescape=True))).all()


def token_state(token: ApiToken, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def revoke_token(
    session: Session,
    token: ApiToken,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """Revoke a token (idempotent; audited the first time)."""
    if token.revoked_at is not None:
        return
    now = now or utcnow()
    token.revoked_at = now
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="token.revoke",
        target=f"user:{token.user.username}",
        details={"token_id": token.id, "token_prefix": token.prefix, "name": token.name},
        now=now,
    )
