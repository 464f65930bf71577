"""Break-glass local accounts (issue 18): who may sign in with a password while SSO is configured.

With SSO on, a local password sign-in passes only for accounts an admin marked break-glass; each
one is recorded as `auth.break_glass_sign_in` (a warning in the audit trail) and announced through
notifications. TOTP is asked of any account that set it up. When TOTP is required for break-glass
admins (`policies.break_glass_totp`) and one has none yet, the password sign-in goes through but the
session is held at the enrolment page until a code confirms it (`policies.must_enrol_totp`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.integrations.vault import Vault
from app.models.account import User
from app.services.accounts import totp
from app.services.accounts.backoff import BackoffPolicy, record_failure
from app.services.audit import Actor, ClientInfo, Outcome, record_audit
from app.services.errors import Conflict
from app.services.notifications.events import break_glass_sign_in

NOT_BREAK_GLASS = (
    "Single sign-on is on: sign in with your identity provider. Only break-glass accounts may use "
    "a password now."
)
CODE_NEEDED = "Enter the 6-digit code from your authenticator app."
CODE_WRONG = "That code is not valid (or was already used)."


def set_break_glass(session: Session, user: User, allowed: bool, *, actor: Actor, now: dt.datetime) -> None:
    if user.is_sso:
        raise Conflict(f"{user.username!r} is an SSO account; only local accounts can be break-glass.")
    user.break_glass = allowed
    record_audit(
        session,
        actor=actor,
        action="user.break_glass_on" if allowed else "user.break_glass_off",
        target=f"user:{user.username}",
        now=now,
    )
    session.flush()


def gate_local_sign_in(
    session: Session,
    user: User,
    *,
    code: str,
    sso_on: bool,
    totp_required: bool,
    vault: Vault | None,
    client: ClientInfo,
    policy: BackoffPolicy,
    now: dt.datetime,
) -> str | None:
    """After the password checked out: None to let the person in, else what to tell them."""
    actor = Actor(name=user.username, user_id=user.id, role=user.role)
    if user.is_sso:
        return NOT_BREAK_GLASS
    if sso_on and not user.break_glass:
        _deny(session, actor, user, "not break-glass", client, now)
        return NOT_BREAK_GLASS
    if user.totp_enabled:
        if not code.strip():
            return CODE_NEEDED
        if not totp.check_code(session, user, code, vault=vault, now=now):
            record_failure(
                session,
                account=user.username_key,
                address=(client.address or "unknown")[:128],
                policy=policy,
                now=now,
            )
            _deny(session, actor, user, "wrong totp code", client, now)
            return CODE_WRONG
    if sso_on:
        record_audit(
            session,
            actor=actor,
            action="auth.break_glass_sign_in",
            target=f"user:{user.username}",
            client=client,
            details={
                "totp": user.totp_enabled,
                "address": client.address,
                "totp_enrolment_required": totp_required and user.role == "admin" and not user.totp_enabled,
            },
            now=now,
        )
        break_glass_sign_in(session, username=user.username, address=client.address or "?", now=now)
    return None


def _deny(
    session: Session, actor: Actor, user: User, reason: str, client: ClientInfo, now: dt.datetime
) -> None:
    record_audit(
        session,
        actor=actor,
        action="auth.sign_in",
        target=f"user:{user.username}",
        outcome=Outcome.denied,
        client=client,
        details={"reason": reason},
        now=now,
    )
