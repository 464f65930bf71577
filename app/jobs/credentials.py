"""The scheduler's credential job: re-verify active credentials every few hours, and queue the
`credential.expiring` notices (30 and 7 days before expiry).

The work itself (one session per credential, each step committed) is `app.services.credentials.runs`,
which the web edge and the CLI call too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.services.credentials import runs
from app.services.credentials.expiry import notify_expiring
from app.settings import Settings

VERIFY_INTERVAL_HOURS = 6


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    scheduler.add_job(
        run_once,
        "interval",
        hours=VERIFY_INTERVAL_HOURS,
        args=(settings, session_factory),
        id="credentials",
        name="re-verify active credentials",
        max_instances=1,
        coalesce=True,
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> int:
    """Re-verify every active credential (binding present, certificate still accepted); returns the count."""
    with session_scope(session_factory) as session:
        notify_expiring(session)
    return runs.reverify_active(settings, session_factory)
