"""The retention job: drops raw samples past LIFELINE_RAW_RETENTION_DAYS (once their hours are rolled
up), rollups and closed incidents past LIFELINE_ROLLUP_RETENTION_DAYS, old poll runs, and sign-in
sessions past their idle or absolute end.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models.poll_run import PollRun
from app.services.accounts.sessions import SessionPolicy, purge_expired_sessions
from app.services.connectivity import retention as svc
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "retention"
INTERVAL = dt.timedelta(hours=1)


def run_retention(
    settings: Settings, session_factory: sessionmaker[Session], *, now: dt.datetime | None = None
) -> svc.RetentionResult:
    """Apply every retention rule once, recorded as a PollRun (job "retention")."""
    now = now or dt.datetime.now(dt.UTC)
    started = time.monotonic()
    with session_scope(session_factory) as session:
        run = PollRun(job=JOB_ID, scope="", started_at=now, outcome="running")
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with session_scope(session_factory) as session:
            result = svc.apply_retention(
                session,
                now,
                raw_days=settings.raw_retention_days,
                rollup_days=settings.rollup_retention_days,
                poll_run_days=settings.poll_run_retention_days,
                keep_run_id=run_id,
            )
            sessions_deleted = purge_expired_sessions(
                session, policy=SessionPolicy.from_settings(settings), now=now
            )
            run = session.get_one(PollRun, run_id)
            run.outcome = "ok"
            run.items = result.total + sessions_deleted
            run.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
        log.info("retention: %s, %d expired sign-in sessions", result, sessions_deleted)
        return result
    except Exception as exc:
        log.exception("retention failed")
        with session_scope(session_factory) as session:
            run = session.get_one(PollRun, run_id)
            run.outcome = "error"
            run.error = f"{type(exc).__name__}: {exc}"[:4000]
            run.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
        raise


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    run_retention(settings, session_factory)


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Hourly; the first run a few minutes after start so it never competes with the first poll."""
    scheduler.add_job(
        run_once,
        "interval",
        seconds=int(INTERVAL.total_seconds()),
        args=(settings, session_factory),
        id=JOB_ID,
        name="apply retention",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
