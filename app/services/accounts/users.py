"""Local accounts: create, sign in (with back-off and no account enumeration), roles, passwords.

Passwords are hashed with Argon2id (argon2-cffi defaults: 64 MiB, 3 passes); a hash made with older
parameters is re-hashed on the next successful sign-in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.models.account import ApiToken, User
from app.models.base import utcnow
from app.services.accounts import hashing
from app.services.accounts.backoff import BackoffPolicy, claim_attempt, refund_attempt
from app.services.accounts.sessions import end_user_sessions
from app.services.audit import Actor, ClientInfo, Outcome, record_audit
from app.services.errors import InvalidInput

ROLES: tuple[str, ...] = ("viewer", "responder", "admin")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

password_hasher = PasswordHasher()
# Verified against when the account does not exist, so an unknown name costs as much as a wrong
# password and response times do not reveal which names exist.
_dummy_hash: str | None = None


class AccountError(InvalidInput):
    """A request about an account that cannot be honoured; `field` names the form field at fault.

    Every account refusal (a bad name, a taken name, the last admin) is answered on the form it
    came from, so all of them are invalid input for that field.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field=field)


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = password_hasher.hash("lifeline dummy password for timing")
    return _dummy_hash


def validate_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise AccountError(
            "Usernames are 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
            "username",
        )
    return username


def validate_password(password: str, *, field: str = "password", username: str | None = None) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Passwords are at most {MAX_PASSWORD_LENGTH} characters.", field)
    if username and password.lower() == username.lower():
        raise AccountError("The password must not be the username.", field)
    return password


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", "role")
    return role


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username_key == username.strip().lower()))


def get_user_or_none(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username_key)).all()


def count_active_admins(session: Session) -> int:
    stmt = select(func.count()).select_from(User).where(User.role == "admin", User.disabled.is_(False))
    return session.scalar(stmt) or 0


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> User:
    """Create an account (audited as `user.create`)."""
    now = now or utcnow()
    username = validate_username(username)
    validate_role(role)
    validate_password(password, username=username)
    if get_user_by_username(session, username) is not None:
        raise AccountError(f"An account named {username!r} already exists.", "username")
    user = User(
        username=username,
        username_key=username.lower(),
        password_hash=hash_password(password),
        role=role,
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.create",
        target=f"user:{username}",
        details={"role": role},
        now=now,
    )
    return user


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    # Seconds the caller must wait before trying again (back-off), else 0.
    retry_after: float = 0.0

    @property
    def ok(self) -> bool:
        return self.user is not None


def authenticate(
    session: Session,
    *,
    factory: sessionmaker[Session],
    username: str,
    password: str,
    client: ClientInfo,
    policy: BackoffPolicy,
    now: dt.datetime | None = None,
) -> SignInResult:
    """Check a sign-in; every outcome is audited and every attempt counts towards the back-off.

    The attempt is counted (committed, through `factory`) before the password is checked, and the
    hash is read in a short session of its own, so the Argon2 check (capped by `hashing.gate()`)
    holds no database connection; `session` (the request's) is used only afterwards, for the audit.
    Unknown account, wrong password and disabled account look identical to the caller.
    """
    now = now or utcnow()
    key = username.strip().lower()[:128]
    address = (client.address or "unknown")[:128]
    wait = claim_attempt(factory, account=key, address=address, policy=policy, now=now)
    if wait > 0:
        record_audit(
            session,
            actor=Actor(name=key or "?"),
            action="auth.sign_in",
            target=f"user:{key}",
            outcome=Outcome.denied,
            client=client,
            details={"reason": "back-off", "retry_after_seconds": round(wait)},
            now=now,
        )
        return SignInResult(None, wait)
    found = _stored_hash(factory, key)
    try:
        with hashing.gate().slot():
            valid = _verify(found[1] if found else _dummy(), password) and found is not None
    except hashing.HashingBusy:
        refund_attempt(factory, account=key, address=address, policy=policy, now=now)
        raise
    valid = valid and found is not None and not found[2]
    if valid:
        # Before the request's session is touched: on SQLite it would hold the write lock.
        refund_attempt(factory, account=key, address=address, policy=policy, now=now)
    user = session.get(User, found[0]) if found else None
    if user is None or not valid:
        reason = "unknown account" if user is None else ("disabled" if user.disabled else "wrong password")
        record_audit(
            session,
            actor=Actor(name=key or "?"),
            action="auth.sign_in",
            target=f"user:{key}",
            outcome=Outcome.failure,
            client=client,
            details={"reason": reason},
            now=now,
        )
        return SignInResult(None)
    if user.password_hash and password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_sign_in_at = now
    record_audit(
        session,
        actor=Actor(name=user.username, user_id=user.id, role=user.role),
        action="auth.sign_in",
        target=f"user:{user.username}",
        client=client,
        now=now,
    )
    return SignInResult(user)


def _stored_hash(factory: sessionmaker[Session], key: str) -> tuple[int, str | None, bool] | None:
    """(id, password hash, disabled) of the account, read in a short session of its own."""
    if not key:
        return None
    with factory() as short:
        row = short.execute(
            select(User.id, User.password_hash, User.disabled).where(User.username_key == key)
        ).first()
    return (row[0], row[1], row[2]) if row else None


def checked_password(
    factory: sessionmaker[Session],
    user: User,
    password: str,
    *,
    client: ClientInfo | None,
    policy: BackoffPolicy,
    now: dt.datetime,
) -> tuple[float, bool]:
    """A signed-in person's password check (re-auth, password change): (seconds to wait, right),
    under the same back-off and hashing cap as sign-in."""
    key = user.username_key
    address = ((client.address if client else None) or "unknown")[:128]
    wait = claim_attempt(factory, account=key, address=address, policy=policy, now=now)
    if wait > 0:
        return wait, False
    try:
        with hashing.gate().slot():
            ok = verify_user_password(user, password)
    except hashing.HashingBusy:
        refund_attempt(factory, account=key, address=address, policy=policy, now=now)
        raise
    if ok:
        refund_attempt(factory, account=key, address=address, policy=policy, now=now)
    return 0.0, ok


def verify_user_password(user: User, password: str) -> bool:
    return _verify(user.password_hash, password) and not user.disabled


def _verify(password_hash: str | None, password: str) -> bool:
    if password_hash is None:  # an SSO account: no local password at all
        _verify(_dummy(), password)
        return False
    try:
        return password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def change_own_password(
    session: Session,
    user: User,
    *,
    current_password: str,
    new_password: str,
    factory: sessionmaker[Session],
    policy: BackoffPolicy,
    client: ClientInfo | None = None,
    keep_session_id: int | None = None,
    end_tokens: bool = True,
    now: dt.datetime | None = None,
) -> float:
    """A user changes their own password; their other sessions end, and their API tokens too unless
    `end_tokens` is false. Returns the back-off wait (0 when the change was made)."""
    now = now or utcnow()
    if user.is_sso:
        raise AccountError("Your password is managed by your identity provider; change it there.")
    wait, ok = checked_password(factory, user, current_password, client=client, policy=policy, now=now)
    if wait:
        return wait
    if not ok:
        record_audit(
            session,
            actor=Actor(name=user.username, user_id=user.id, role=user.role),
            action="user.password_change",
            target=f"user:{user.username}",
            outcome=Outcome.failure,
            client=client,
            details={"reason": "wrong current password"},
            now=now,
        )
        raise AccountError("The current password is not correct.", "current_password")
    validate_password(new_password, field="new_password", username=user.username)
    _set_password(session, user, new_password, now=now, keep_session_id=keep_session_id)
    ended = revoke_user_tokens(session, user, now=now) if end_tokens else 0
    record_audit(
        session,
        actor=Actor(name=user.username, user_id=user.id, role=user.role),
        action="user.password_change",
        target=f"user:{user.username}",
        client=client,
        details={"tokens_ended": ended},
        now=now,
    )
    return 0.0


def reset_password(
    session: Session,
    user: User,
    *,
    new_password: str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """An admin (or the CLI) sets a new password; every session of the account ends."""
    now = now or utcnow()
    validate_password(new_password, username=user.username)
    _set_password(session, user, new_password, now=now, keep_session_id=None)
    record_audit(
        session,
        actor=actor,
        action="user.password_reset",
        target=f"user:{user.username}",
        now=now,
    )


def revoke_user_tokens(session: Session, user: User, *, now: dt.datetime) -> int:
    """End every API token of the account that still works (one audit row each); returns how many."""
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in rows:
        token.revoked_at = now
        record_audit(
            session,
            actor=Actor(name=user.username, user_id=user.id, role=user.role),
            action="token.revoke",
            target=f"user:{user.username}",
            details={"token_id": token.id, "token_prefix": token.prefix, "reason": "password changed"},
            now=now,
        )
    session.flush()
    return len(rows)


def _set_password(
    session: Session, user: User, password: str, *, now: dt.datetime, keep_session_id: int | None
) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.updated_at = now
    end_user_sessions(session, user.id, keep_session_id=keep_session_id)
    session.flush()


def is_demotion(before: str, after: str) -> bool:
    """True when `after` ranks below `before` (offboarding revokes credentials then)."""
    return ROLES.index(after) < ROLES.index(before) if before in ROLES and after in ROLES else False


def set_role(
    session: Session,
    user: User,
    *,
    role: str,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """Change an account's role (refused if it would leave no enabled admin)."""
    validate_role(role)
    if user.role == role:
        return
    if user.role == "admin" and not user.disabled and count_active_admins(session) <= 1:
        raise AccountError("This is the last enabled admin; make another admin first.", "role")
    previous = user.role
    user.role = role
    user.updated_at = now or utcnow()
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.role_change",
        target=f"user:{user.username}",
        details={"from": previous, "to": role},
        now=now,
    )


def set_disabled(
    session: Session,
    user: User,
    *,
    disabled: bool,
    actor: Actor,
    now: dt.datetime | None = None,
) -> None:
    """Disable (ending every session; tokens stop working) or re-enable an account."""
    if user.disabled == disabled:
        return
    if disabled and user.role == "admin" and count_active_admins(session) <= 1:
        raise AccountError("This is the last enabled admin; it cannot be disabled.", "disabled")
    user.disabled = disabled
    user.updated_at = now or utcnow()
    if disabled:
        end_user_sessions(session, user.id)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        target=f"user:{user.username}",
        now=now,
    )


def confirm_password(
    session: Session,
    user: User,
    *,
    factory: sessionmaker[Session],
    password: str,
    client: ClientInfo,
    policy: BackoffPolicy,
    now: dt.datetime | None = None,
) -> tuple[float, bool]:
    """ "Confirm your password" in a signed-in session: (seconds to wait, confirmed).

    Attempts count towards the same back-off as sign-in, so a stolen session is no password oracle.
    """
    now = now or utcnow()
    wait, ok = checked_password(factory, user, password, client=client, policy=policy, now=now)
    if wait:
        return wait, False
    record_audit(
        session,
        actor=Actor(name=user.username, user_id=user.id, role=user.role),
        action="auth.reauth",
        target=f"user:{user.username}",
        outcome=Outcome.success if ok else Outcome.failure,
        client=client,
        now=now,
    )
    return 0.0, ok
