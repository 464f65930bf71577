"""The discovery job: re-apply the fleet file, then ListClusters + DescribeCluster in every region.

Runs at scheduler start and every poll interval, so a fleet file changed by GitOps lands without a
restart. Each region is its own transaction and its own PollRun; one failing region does not stop
the others, and a rejected fleet file leaves the fleet as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.aws import AwsClients, describe_client_error
from app.integrations.eks import EksClient
from app.models import PollRun
from app.services.fleet.discovery import (
    DISCOVERY_JOB,
    FLEET_FILE_JOB,
    discovery_regions,
    record_discovered_clusters,
)
from app.services.fleet.fleet_file import FleetFileError, load_fleet_file
from app.services.fleet.inventory import FleetChanges, apply_fleet_file
from app.settings import Settings

log = logging.getLogger(__name__)


class DiscoveryFailedError(Exception):
    """Some part of a discovery run failed (each failure is recorded in its PollRun)."""


@dataclass
class DiscoveryReport:
    changes: FleetChanges = field(default_factory=FleetChanges)
    regions: dict[str, str | None] = field(default_factory=dict)  # region -> error or None
    file_error: str | None = None

    @property
    def errors(self) -> list[str]:
        found = [f"{region}: {error}" for region, error in self.regions.items() if error]
        return ([f"fleet file: {self.file_error}"] if self.file_error else []) + found


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    scheduler.add_job(
        poll_discovery,
        "interval",
        seconds=settings.poll_interval_seconds,
        args=[settings, session_factory],
        id="discovery",
        name="fleet file and EKS discovery",
        # The first run is the start-up run (app.jobs.scheduler.run_startup): discovery, then the
        # readiness poll of what it found, in that order.
        next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.poll_interval_seconds),
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> DiscoveryReport:
    """One run; raises DiscoveryFailedError (after doing everything it could) if any part failed."""
    report = poll_discovery(settings, session_factory)
    if report.errors:
        raise DiscoveryFailedError("; ".join(report.errors))
    return report


def poll_discovery(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    regions: Iterable[str] | None = None,
    apply_file: bool = True,
) -> DiscoveryReport:
    """Apply the fleet file, then discover every region (or only `regions`)."""
    report = DiscoveryReport()
    file_regions: tuple[str, ...] = ()
    if apply_file and settings.fleet_file is not None:
        file_regions = _apply_configured_file(settings, session_factory, report)
    if regions is None:
        regions = discovery_regions(file_regions, settings.aws_regions)
    clients = AwsClients.from_settings(settings)
    for region in regions:
        report.regions[region] = discover_region(clients, session_factory, region, report.changes)
    return report


def _apply_configured_file(
    settings: Settings, session_factory: sessionmaker[Session], report: DiscoveryReport
) -> tuple[str, ...]:
    path = settings.fleet_file
    assert path is not None
    run_id = _start_run(session_factory, FLEET_FILE_JOB, str(path))
    try:
        fleet = load_fleet_file(path)
        with session_scope(session_factory) as session:
            changes = apply_fleet_file(session, fleet)
            _finish_run(session, run_id, error=None, items=len(changes.changes))
    except FleetFileError as exc:
        report.file_error = f"{path} rejected, nothing applied: {exc}"
        log.error("fleet file %s", report.file_error)
        _record_failure(session_factory, run_id, str(exc))
        return ()
    except Exception as exc:
        report.file_error = f"{type(exc).__name__}: {exc}"
        log.exception("applying fleet file %s failed", path)
        _record_failure(session_factory, run_id, report.file_error)
        return ()
    report.changes.changes.extend(changes.changes)
    if changes.modified:
        log.info("fleet file %s applied: %s", path, changes.summary())
    return fleet.discovery_regions


def discover_region(
    clients: AwsClients, session_factory: sessionmaker[Session], region: str, changes: FleetChanges
) -> str | None:
    """Discover one region; return None on success or the error recorded on its PollRun."""
    run_id = _start_run(session_factory, DISCOVERY_JOB, region)
    eks: EksClient | None = None
    try:
        eks = EksClient(clients, region)
        listing = eks.list_clusters()
        with session_scope(session_factory) as session:
            found = record_discovered_clusters(session, listing, dt.datetime.now(dt.UTC))
            _finish_run(session, run_id, error=None, items=len(listing.clusters), requests=listing.requests)
    except ClientError as exc:
        error = describe_client_error(exc)
    except BotoCoreError as exc:
        # Endpoint unreachable, timeouts: the cached facts stay as they were.
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        log.exception("discovery in %s failed", region)
        error = f"{type(exc).__name__}: {exc}"
    else:
        changes.changes.extend(found.changes)
        return None
    log.warning("discovery in %s failed: %s", region, error)
    _record_failure(session_factory, run_id, error, requests=eks.requests if eks else 0)
    return error


def _start_run(session_factory: sessionmaker[Session], job: str, scope: str) -> int:
    # Committed at once so the Fleet page shows a run in progress.
    with session_scope(session_factory) as session:
        run = PollRun(job=job, scope=scope[:128], started_at=dt.datetime.now(dt.UTC), outcome="running")
        session.add(run)
        session.flush()
        return run.id


def _finish_run(
    session: Session, run_id: int, *, error: str | None, items: int = 0, requests: int = 0
) -> None:
    run = session.get(PollRun, run_id)
    if run is None:  # removed by retention between start and finish
        return
    run.finished_at = dt.datetime.now(dt.UTC)
    run.outcome = "error" if error else "ok"
    run.error = error
    run.items = items
    run.requests = requests
    session.flush()


def _record_failure(
    session_factory: sessionmaker[Session], run_id: int, error: str, requests: int = 0
) -> None:
    with session_scope(session_factory) as session:
        _finish_run(session, run_id, error=error, requests=requests)
