"""Exponential back-off on password checks, per (account, client address) and per client address.

Every attempt is counted *before* the password is checked, in its own short transaction that locks
the counter rows (PostgreSQL: SELECT ... FOR UPDATE after an insert-or-ignore; SQLite: the writer
transaction is IMMEDIATE), so parallel guesses are serialised on the counter: at most
`free_attempts` of them are ever evaluated before the back-off starts.

There is no per-name block from any address: failures typed from one address slow only that
(account, address) pair and that address, so nobody can lock an account out from elsewhere. A client
address gets three times the free attempts of a pair (several people may share a NAT). State lives
in `login_attempts`, so it survives restarts and holds across web replicas.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope, upsert
from app.models.account import LoginThrottle

ADDRESS_FACTOR = 3
PAIR = "pair"
ADDRESS = "address"


@dataclass(frozen=True)
class BackoffPolicy:
    free_attempts: int = 3
    base_seconds: float = 2.0
    max_seconds: float = 900.0
    window: dt.timedelta = dt.timedelta(minutes=15)

    def delay(self, failures: int, free: int) -> float:
        """Seconds to wait after `failures` counted attempts (0 while within the free attempts)."""
        over = failures - free
        if over < 0:
            return 0.0
        return float(min(self.max_seconds, self.base_seconds * (2 ** min(over, 30))))


def pair_key(account: str, address: str) -> str:
    """The counter key of one account typed from one address (hashed: fits the column, any length)."""
    return hashlib.sha256(f"{account}\x00{address}".encode()).hexdigest()


def _scopes(account: str, address: str, policy: BackoffPolicy) -> list[tuple[str, str, int]]:
    return [
        (PAIR, pair_key(account, address), policy.free_attempts),
        (ADDRESS, address[:128], policy.free_attempts * ADDRESS_FACTOR),
    ]


def _locked_row(session: Session, scope: str, key: str) -> LoginThrottle:
    # Insert-or-ignore first, then lock the row: concurrent requests and replicas never lose a count.
    upsert(
        session,
        LoginThrottle.__table__,  # type: ignore[arg-type]
        [{"scope": scope, "key": key, "failures": 0}],
        conflict_columns=["scope", "key"],
    )
    return session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def claim_attempt(
    factory: sessionmaker[Session], *, account: str, address: str, policy: BackoffPolicy, now: dt.datetime
) -> float:
    """Count one attempt before the password is checked (committed at once); returns the seconds to
    wait when the back-off refuses it (nothing is counted then), else 0."""
    with session_scope(factory) as session:
        rows = [
            (_locked_row(session, scope, key), free) for scope, key, free in _scopes(account, address, policy)
        ]
        wait = 0.0
        for row, _free in rows:
            if row.last_failure_at is not None and now - row.last_failure_at > policy.window:
                row.failures, row.blocked_until = 0, None
            if row.blocked_until is not None and row.blocked_until > now:
                wait = max(wait, (row.blocked_until - now).total_seconds())
        if wait:
            return wait
        for row, free in rows:
            row.failures += 1
            row.last_failure_at = now
            delay = policy.delay(row.failures, free)
            row.blocked_until = now + dt.timedelta(seconds=delay) if delay else None
    return 0.0


def refund_attempt(
    factory: sessionmaker[Session], *, account: str, address: str, policy: BackoffPolicy, now: dt.datetime
) -> None:
    """The claimed attempt succeeded (or was never evaluated): the pair's counter is cleared and the
    address's is given back its one count."""
    with session_scope(factory) as session:
        session.execute(
            delete(LoginThrottle).where(
                LoginThrottle.scope == PAIR, LoginThrottle.key == pair_key(account, address)
            )
        )
        row = _locked_row(session, ADDRESS, address[:128])
        row.failures = max(0, row.failures - 1)
        delay = policy.delay(row.failures, policy.free_attempts * ADDRESS_FACTOR)
        row.blocked_until = now + dt.timedelta(seconds=delay) if delay else None


def check_backoff(
    session: Session, *, account: str, address: str, policy: BackoffPolicy, now: dt.datetime
) -> float:
    """Seconds until a check for this account from this address may be tried (0: go ahead)."""
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
    """Count one failure in the caller's transaction (a wrong TOTP code after a right password)."""
    for scope, key, free in _scopes(account, address, policy):
        row = _locked_row(session, scope, key)
        if row.last_failure_at is not None and now - row.last_failure_at > policy.window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = policy.delay(row.failures, free)
        row.blocked_until = now + dt.timedelta(seconds=delay) if delay else None
    session.flush()
