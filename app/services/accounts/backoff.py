"""Exponential back-off after failed sign-ins, per account name and per client address.

State lives in `login_attempts` so it survives restarts and holds across web replicas. A client
address gets three times the free attempts of an account (several people may share a NAT).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db import upsert
from app.models.account import LoginThrottle

ADDRESS_FACTOR = 3


@dataclass(frozen=True)
class BackoffPolicy:
    free_attempts: int = 3
    base_seconds: float = 2.0
    max_seconds: float = 900.0
    window: dt.timedelta = dt.timedelta(minutes=15)

    def delay(self, failures: int, free: int) -> float:
        """Seconds to wait after `failures` consecutive failures (0 while within the free attempts)."""
        over = failures - free
        if over < 0:
            return 0.0
        return float(min(self.max_seconds, self.base_seconds * (2 ** min(over, 30))))


def _scopes(account: str, address: str, policy: BackoffPolicy) -> list[tuple[str, str, int]]:
    return [
        ("account", account, policy.free_attempts),
        ("address", address, policy.free_attempts * ADDRESS_FACTOR),
    ]


def check_backoff(
    session: Session, *, account: str, address: str, policy: BackoffPolicy, now: dt.datetime
) -> float:
    """Seconds until a sign-in for this account from this address may be tried (0: go ahead)."""
    wait = 0.0
    for scope, key, _free in _scopes(account, address, policy):
        row = session.scalar(
            select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        )
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = max(wait, (row.blocked_until - now).total_seconds())
    return wait


def record_failure(
    session: Session, *, account: str, address: str, policy: BackoffPolicy, now: dt.datetime
) -> None:
    """Count one failed sign-in against both the account name and the address."""
    for scope, key, free in _scopes(account, address, policy):
        # Insert-or-ignore first, then lock the row: concurrent replicas never lose a failure.
        upsert(
            session,
            LoginThrottle.__table__,  # type: ignore[arg-type]
            [{"scope": scope, "key": key, "failures": 0}],
            conflict_columns=["scope", "key"],
        )
        row = session.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if row.last_failure_at is not None and now - row.last_failure_at > policy.window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = policy.delay(row.failures, free)
        row.blocked_until = now + dt.timedelta(seconds=delay) if delay else None
    session.flush()


def record_success(session: Session, *, account: str) -> None:
    """A successful sign-in clears the account's counter (the address keeps its own, decaying)."""
    session.execute(
        delete(LoginThrottle).where(LoginThrottle.scope == "account", LoginThrottle.key == account)
    )
