"""The scheduler: one per deployment (embedded in `serve` or standalone), jobs from each feature.

Each job module exposes `register(scheduler, settings, session_factory)` and `run_once(settings,
session_factory)`; this module imports them all and wires them.
"""

from __future__ import annotations

import logging
from types import ModuleType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import connectivity, credentials, fleet, notifications, probes, readiness, retention
from app.settings import Settings

log = logging.getLogger(__name__)

# Order matters for run_all_once: fleet discovery before polling what it discovered.
JOB_MODULES: tuple[ModuleType, ...] = (
    fleet,
    connectivity,
    probes,
    retention,
    readiness,
    credentials,
    notifications,
)


def build_scheduler(settings: Settings, session_factory: sessionmaker[Session]) -> BackgroundScheduler:
    """A scheduler with every job registered (max_instances=1, coalesce=True), not yet started."""
    scheduler = BackgroundScheduler(
        timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    )
    for module in JOB_MODULES:
        module.register(scheduler, settings, session_factory)
    return scheduler


def run_all_once(settings: Settings, session_factory: sessionmaker[Session]) -> list[str]:
    """Run every job once in order; return the names of those that raised."""
    failures = []
    for module in JOB_MODULES:
        try:
            module.run_once(settings, session_factory)
        except Exception:
            log.exception("job %s failed", module.__name__)
            failures.append(module.__name__.rsplit(".", 1)[-1])
    return failures
