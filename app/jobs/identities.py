"""The scheduler's upkeep of Lifeline's own identities: while the Region is reachable, give every
cluster an issuer and a reader identity, and renew each when a third of its lifetime is left.

The work (ClusterRole, CSR steps, each committed) is `app.services.credentials.runs.upkeep_identities`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.services.credentials import runs
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "identities"


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    if not settings.own_identities:
        return
    scheduler.add_job(
        run_once,
        "interval",
        minutes=settings.own_identity_check_minutes,
        args=(settings, session_factory),
        id=JOB_ID,
        name="Lifeline's own cluster identities",
        max_instances=1,
        coalesce=True,
        # Soon after start (discovery has cached endpoints by then), before the first readiness poll.
        next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5),
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> dict[str, str]:
    """Create or renew every cluster's issuer and reader identity; returns what happened per identity."""
    outcomes = runs.upkeep_identities(settings, session_factory)
    for key, outcome in outcomes.items():
        log.info("own identity %s: %s", key, outcome)
    return outcomes
