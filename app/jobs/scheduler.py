"""The scheduler: one per deployment (embedded in `serve` or standalone), jobs from each feature.

Each job module exposes `register(scheduler, settings, session_factory)` and `run_once(settings,
session_factory)`; this module imports them all and wires them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from types import ModuleType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import (
    connectivity,
    credentials,
    drills,
    fleet,
    identities,
    notifications,
    probes,
    readiness,
    recovery,
    retention,
    triggers,
)
from app.jobs.leader import Elector, check_interval
from app.models.base import utcnow
from app.settings import Settings

log = logging.getLogger(__name__)

# Order matters for run_all_once: fleet discovery before polling what it discovered.
JOB_MODULES: tuple[ModuleType, ...] = (
    fleet,
    connectivity,
    probes,
    retention,
    identities,  # before readiness: its reader identity makes the first poll see everything
    readiness,
    credentials,
    drills,
    notifications,
    recovery,
)


STARTUP_JOB = "startup"


def run_startup(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """The first discovery and the first readiness poll, in that order and at once.

    As two interval jobs they raced: readiness started 20 s after start-up whether or not discovery
    had finished, so on a slow start it polled no clusters and the first findings came one readiness
    interval (5 min) later; a start more than `misfire_grace_time` late dropped the run altogether.
    """
    try:
        fleet.poll_discovery(settings, session_factory)
    except Exception:  # readiness still polls the clusters already known
        log.exception("start-up discovery failed")
    readiness.poll_clusters(settings, session_factory)


def build_scheduler(settings: Settings, session_factory: sessionmaker[Session]) -> BackgroundScheduler:
    """A scheduler with every job registered (max_instances=1, coalesce=True), not yet started."""
    scheduler = BackgroundScheduler(
        timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    )
    for module in JOB_MODULES:
        module.register(scheduler, settings, session_factory)
    scheduler.add_job(
        run_startup,
        args=[settings, session_factory],
        id=STARTUP_JOB,
        name="start-up discovery, then readiness",
        next_run_time=dt.datetime.now(dt.UTC),
        misfire_grace_time=None,  # however late the scheduler gets to it, it runs
    )
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


class LeaderScheduler:
    """The scheduler of `serve` and `lifeline scheduler`: its jobs run only while this process leads
    (app/jobs/leader.py). On SQLite `start` raises `SchedulerRefused` when another scheduler holds
    the database file."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings, self.session_factory = settings, session_factory
        self._lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self.elector = Elector(
            settings.database_url,
            interval=check_interval(settings.poll_interval_seconds),
            on_elected=self._elected,
            on_lost=self._lost,
        )

    @property
    def leading(self) -> bool:
        return self.elector.leading

    def start(self) -> None:
        self.elector.start()

    def shutdown(self) -> None:
        self.elector.stop()

    def _elected(self) -> None:
        elected_at = utcnow()
        try:
            # Only the leader polls: a run still `running` now was left by one that died.
            recovery.close_interrupted_runs(self.session_factory, before=elected_at)
        except Exception:
            log.exception("closing interrupted poll runs failed")
        try:
            # The fleet file first, so the start-up poll already covers a new fleet.
            fleet.poll_discovery(self.settings, self.session_factory, regions=[])
        except Exception:
            log.exception("applying the fleet file at start-up failed")
        with self._lock:
            if self._scheduler is None:
                self._scheduler = build_scheduler(self.settings, self.session_factory)
                self._scheduler.start()

    def _lost(self) -> None:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            triggers.detach(scheduler)
            scheduler.shutdown(wait=False)
