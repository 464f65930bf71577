"""The drill job: every LIFELINE_DRILL_CHECK_INTERVAL_SECONDS, start planned drills whose time has
come, run a check round of each running drill, end those whose window is over. The work lives in
`app.services.drills.runner` (which owns its transactions); one failing drill does not stop the others."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.services.drills import runner
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "drills"


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> dict[str, int]:
    counts = runner.advance(settings, session_factory)
    if any(counts.values()):
        log.info("drills: %s", counts)
    return counts


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    scheduler.add_job(
        run_once,
        "interval",
        seconds=settings.drill_check_interval_seconds,
        args=(settings, session_factory),
        id=JOB_ID,
        name="run disconnect drills",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
