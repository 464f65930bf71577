"""Security switches admins turn on a page (issue 18): today "break-glass admins must use TOTP".

Precedence, the stricter wins: the setting (`LIFELINE_BREAK_GLASS_TOTP_REQUIRED`) is the floor an
operator sets in the deployment; when it is on, the page shows the switch as on and cannot turn it
off. When the setting is off, the admins' switch (a row in `policies`, audited) decides; with no
row yet, the requirement is off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models.account import Policy, User
from app.services.accounts.sessions import SignedIn
from app.services.audit import Actor, record_audit
from app.services.errors import Conflict

BREAK_GLASS_TOTP = "break_glass_totp_required"


@dataclass(frozen=True)
class PolicyState:
    enabled: bool
    # "setting" (forced on by configuration), "admin" (a saved switch), "default" (nothing set).
    source: str
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


def break_glass_totp(session: Session, *, setting: bool) -> PolicyState:
    row = session.get(Policy, BREAK_GLASS_TOTP)
    if setting:
        return PolicyState(True, "setting")
    if row is None:
        return PolicyState(False, "default")
    return PolicyState(row.enabled, "admin", row.updated_by, row.updated_at)


def set_break_glass_totp(
    session: Session, enabled: bool, *, setting: bool, actor: Actor, now: dt.datetime
) -> PolicyState:
    if setting and not enabled:
        raise Conflict(
            "LIFELINE_BREAK_GLASS_TOTP_REQUIRED is on in the configuration, so the requirement cannot be "
            "turned off here; change the setting and restart."
        )
    row = session.get(Policy, BREAK_GLASS_TOTP)
    if row is None:
        row = Policy(key=BREAK_GLASS_TOTP, enabled=enabled, updated_at=now, updated_by=actor.name[:64])
        session.add(row)
    else:
        row.enabled, row.updated_at, row.updated_by = enabled, now, actor.name[:64]
    record_audit(
        session,
        actor=actor,
        action="policy.break_glass_totp_on" if enabled else "policy.break_glass_totp_off",
        target=f"policy:{BREAK_GLASS_TOTP}",
        now=now,
    )
    session.flush()
    return break_glass_totp(session, setting=setting)


def may_need_totp_enrolment(user: User | SignedIn, *, sso_on: bool) -> bool:
    """Whether `must_enrol_totp` has to read the policy for this user (no I/O): only a password
    break-glass admin without TOTP, with SSO on, can be held."""
    return sso_on and user.break_glass and user.role == "admin" and not user.totp_enabled and not user.is_sso


def must_enrol_totp(session: Session, user: User | SignedIn, *, sso_on: bool, setting: bool) -> bool:
    """A break-glass admin without TOTP while the requirement is on: enrolment comes before anything."""
    if not may_need_totp_enrolment(user, sso_on=sso_on):
        return False
    return break_glass_totp(session, setting=setting).enabled
