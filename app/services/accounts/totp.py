"""TOTP second factor for local accounts (issue 18), with pyotp (RFC 6238, 30 s steps, 6 digits).

The secret is 160 random bits (pyotp wants at least 112), sealed with the data key like every other
server-held secret, bound to its user row. A code is accepted once: the last step used is stored,
so a code seen over a shoulder cannot be replayed within its 30 seconds.
"""

from __future__ import annotations

import datetime as dt

import pyotp
from sqlalchemy.orm import Session

from app.integrations.vault import Vault, VaultError
from app.models.account import User
from app.services.audit import Actor, record_audit
from app.services.errors import Conflict, InvalidInput, Unavailable

ISSUER_NAME = "Outpost Lifeline"
NO_KEY = (
    "A TOTP secret is kept encrypted with the data key, and none is configured: set LIFELINE_DATA_KEY "
    "(or LIFELINE_DATA_KEY_FILE) first."
)


def _context(user: User) -> str:
    return f"totp:user:{user.id}"


totp_context = _context  # public: the data key rotation re-seals TOTP secrets


def _secret(user: User, vault: Vault | None) -> str:
    if vault is None:
        raise Unavailable(NO_KEY)
    if user.totp_secret_sealed is None:
        raise Conflict(f"{user.username!r} has no TOTP set up.")
    try:
        return vault.open(user.totp_secret_sealed, context=_context(user)).decode()
    except VaultError as exc:
        raise Unavailable(f"The TOTP secret does not open: {exc}.") from None


def start_enrolment(session: Session, user: User, *, vault: Vault | None) -> str:
    """A new secret for `user` (not active until a code confirms it); returns the otpauth:// URI."""
    if vault is None:
        raise Unavailable(NO_KEY)
    secret = pyotp.random_base32(32)
    user.totp_secret_sealed = vault.seal(secret.encode(), context=_context(user))
    user.totp_enabled = False
    user.totp_last_step = None
    session.flush()
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER_NAME)


def pending_uri(user: User, *, vault: Vault | None) -> str | None:
    if user.totp_enabled or user.totp_secret_sealed is None or vault is None:
        return None
    return pyotp.TOTP(_secret(user, vault)).provisioning_uri(name=user.username, issuer_name=ISSUER_NAME)


def check_code(session: Session, user: User, code: str, *, vault: Vault | None, now: dt.datetime) -> bool:
    """Whether `code` is valid now (one step either side) and not used before; records its step."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(_secret(user, vault))
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if totp.at(candidate * totp.interval) == code:
            if user.totp_last_step is not None and candidate <= user.totp_last_step:
                return False
            user.totp_last_step = candidate
            session.flush()
            return True
    return False


def confirm_enrolment(
    session: Session, user: User, code: str, *, vault: Vault | None, actor: Actor, now: dt.datetime
) -> None:
    if user.totp_secret_sealed is None:
        raise Conflict("Start the TOTP set-up first.")
    if not check_code(session, user, code, vault=vault, now=now):
        raise InvalidInput("That code does not match; check the authenticator app's clock.", field="code")
    user.totp_enabled = True
    record_audit(session, actor=actor, action="user.totp_enable", target=f"user:{user.username}", now=now)


def disable(session: Session, user: User, *, actor: Actor, now: dt.datetime) -> None:
    user.totp_enabled = False
    user.totp_secret_sealed = None
    user.totp_last_step = None
    record_audit(session, actor=actor, action="user.totp_disable", target=f"user:{user.username}", now=now)


def reset_by_admin(session: Session, user: User, *, actor: Actor, now: dt.datetime) -> None:
    """Recovery for a lost authenticator: an admin removes it; the person sets up a new one."""
    if user.totp_secret_sealed is None and not user.totp_enabled:
        raise Conflict(f"{user.username!r} has no TOTP set up.")
    user.totp_enabled = False
    user.totp_secret_sealed = None
    user.totp_last_step = None
    record_audit(session, actor=actor, action="user.totp_reset", target=f"user:{user.username}", now=now)
    session.flush()
