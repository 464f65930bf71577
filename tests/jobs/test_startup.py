"""The start-up run: discovery, then readiness of what it found, at once and in that order.

Before, readiness first ran 20 s after start whatever discovery was doing: on a slow start it polled
no clusters and the first findings came one readiness interval (5 min) later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.scheduler import STARTUP_JOB, build_scheduler, run_startup
from app.models import Cluster
from app.services.readiness import records
from lifeline_demo.fleet import DEMO_REGIONS, DemoFleet
from tests.conftest import make_settings


@pytest.fixture
def startup_fleet(aws_endpoint: str) -> Iterator[DemoFleet]:
    fleet = DemoFleet(endpoint_url=aws_endpoint).start()
    yield fleet
    fleet.stop()


def test_the_scheduler_starts_with_discovery_then_readiness(database_url: str) -> None:
    settings = make_settings(database_url, poll_interval_seconds=60, readiness_poll_interval_seconds=300)
    scheduler = build_scheduler(settings, sessionmaker())
    now = dt.datetime.now(dt.UTC)
    startup = scheduler.get_job(STARTUP_JOB)
    assert startup is not None and startup.func is run_startup
    assert startup.next_run_time <= now + dt.timedelta(seconds=1)
    assert startup.misfire_grace_time is None  # never dropped for starting late
    # The interval jobs take over one interval later; neither races the start-up run.
    assert scheduler.get_job("discovery").next_run_time >= now + dt.timedelta(seconds=55)
    assert scheduler.get_job("clusters").next_run_time >= now + dt.timedelta(seconds=295)


def test_the_start_up_run_leaves_every_demo_cluster_with_findings(
    startup_fleet: DemoFleet, database_url: str, aws_endpoint: str, session_factory: sessionmaker[Session],
    session: Session,
) -> None:  # fmt: skip
    settings = make_settings(
        database_url,
        aws_endpoint_url=aws_endpoint,
        aws_regions=list(DEMO_REGIONS),
        readiness_poll_concurrency=1,
    )
    run_startup(settings, session_factory)
    clusters = session.scalars(select(Cluster).order_by(Cluster.name)).all()
    assert [c.name for c in clusters] == sorted(startup_fleet.clusters)
    for cluster in clusters:
        state: Any = records.get_state(session, cluster)
        assert state is not None and state.last_polled_at is not None, cluster.name
        assert records.current_findings(session, cluster, state), cluster.name
