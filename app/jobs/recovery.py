"""Recovery after a crash: runs left `running` are closed as interrupted, and credentials left
`issuing` are reconciled from their cluster (see app/services/credentials/reconcile.py).

Both run when this process becomes the scheduler's leader (only the leader polls, so a poll run
still `running` then was left by a leader that died), and the credential pass runs again every poll
interval: a web replica that crashed mid-issue is caught up by whoever leads.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import PollRun
from app.models.base import utcnow
from app.services.credentials import reconcile, runs
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "recovery"
INTERRUPTED = "interrupted"
INTERRUPTED_MESSAGE = "the scheduler stopped before this run finished (a crash or a restart)"


def close_interrupted_runs(
    session_factory: sessionmaker[Session], *, before: dt.datetime | None = None
) -> int:
    """Close every poll run still `running` that started before `before`; returns how many."""
    before = before or utcnow()
    with session_scope(session_factory) as session:
        result = session.execute(
            update(PollRun)
            .where(PollRun.outcome == "running", PollRun.started_at <= before)
            .values(outcome=INTERRUPTED, finished_at=utcnow(), error=INTERRUPTED_MESSAGE)
            .execution_options(synchronize_session=False)
        )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        log.warning("closed %d poll run(s) left running as interrupted", count)
    return count


def reconcile_credentials(
    settings: Settings, session_factory: sessionmaker[Session], *, now: dt.datetime | None = None
) -> list[reconcile.Reconciled]:
    """Reconcile each stale `issuing` credential in its own transaction; one failure spares the rest."""
    stale_after = dt.timedelta(seconds=settings.credential_stale_seconds)
    with session_scope(session_factory) as session:
        ids = reconcile.stale_issuing_ids(session, stale_after=stale_after, now=now)
    if not ids:
        return []
    access = runs.build_access(settings)
    done: list[reconcile.Reconciled] = []
    for credential_id in ids:
        try:
            with session_scope(session_factory) as session:
                result = reconcile.reconcile_credential(session, credential_id, access)
            if result is not None:
                done.append(result)
        except Exception:
            log.exception("credential %s: reconciliation failed", credential_id)
    return done


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    scheduler.add_job(
        run_once,
        "interval",
        seconds=settings.poll_interval_seconds,
        args=(settings, session_factory),
        id=JOB_ID,
        name="reconcile interrupted credential runs",
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> int:
    return len(reconcile_credentials(settings, session_factory))
