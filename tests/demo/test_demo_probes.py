"""The demo's outage switch through the site probes: the overview row turns Disconnected (site view)
in one probe cycle plus one confirmation, and back; the demo page says so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import probes
from app.models import Cluster, Outpost
from app.web.connectivity.overview import _overview_with_site_view
from lifeline_demo import web as demo_web
from lifeline_demo.fleet import DemoFleet
from tests.conftest import make_settings
from tests.fixtures.probes import FakeClock

SWITCHED = "op-0f1e2d3c4b5a69781"  # Plant 7 Reno, rack A: runs plant7-local


@pytest.fixture
def demo_fleet(aws_endpoint: str) -> Iterator[DemoFleet]:
    fleet = DemoFleet(endpoint_url=aws_endpoint).start(seed_clusters=False)
    yield fleet
    fleet.stop()


def _register(session: Session, fleet: DemoFleet) -> None:
    now = dt.datetime.now(dt.UTC)
    for demo in fleet.outposts:
        outpost = Outpost(
            outpost_id=demo.outpost_id,
            name=demo.name,
            region=demo.region,
            state="CONNECTED",
            state_since=now - dt.timedelta(hours=1),
            last_sample_at=now - dt.timedelta(seconds=90),
            last_value=1.0,
        )
        session.add(outpost)
        session.flush()
        if demo.cluster:
            sim = fleet.clusters[demo.cluster]
            session.add(
                Cluster(
                    name=demo.cluster,
                    region=demo.region,
                    outpost_pk=outpost.id,
                    endpoint=sim.url,
                    certificate_authority=sim.ca_data,
                    cluster_uid=sim.cluster_uid,
                )
            )
    session.commit()


def _row_state(session: Session, vantage: str) -> tuple[str, str]:
    session.expire_all()
    data, verdicts = _overview_with_site_view(session, vantage, dt.datetime.now(dt.UTC), None, None, "state")
    row = next(r for r in data.rows if r.outpost.outpost_id == SWITCHED)
    return verdicts[row.outpost.id].state, verdicts[row.outpost.id].source


def test_demo_switch_turns_the_overview_row_through_the_site_probes(
    demo_fleet: DemoFleet,
    session: Session,
    session_factory: sessionmaker[Session],
    database_url: str,
    aws_endpoint: str,
) -> None:
    _register(session, demo_fleet)
    settings = make_settings(
        database_url, aws_endpoint_url=aws_endpoint, vantage="demo-dashboard", probe_control_plane_ips=False
    )
    runner = probes.Runner.from_settings(settings)
    clock = FakeClock()
    probes.probe_cycle(settings, session_factory, runner, clock=clock, sleep=clock.sleep)
    assert _row_state(session, settings.vantage) == ("CONNECTED", "CloudWatch")  # both agree

    demo_fleet.set_connected(SWITCHED, False)
    clock.advance(settings.probe_interval_seconds)
    before = clock.now
    probes.probe_cycle(settings, session_factory, runner, clock=clock, sleep=clock.sleep)
    assert _row_state(session, settings.vantage) == ("DISCONNECTED", "site view")
    # One interval to the next cycle, one confirmation: well inside the 15 s the demo promises.
    assert settings.probe_interval_seconds + (clock.now - before).total_seconds() <= 15

    demo_fleet.set_connected(SWITCHED, True)
    clock.advance(settings.probe_interval_seconds)
    probes.probe_cycle(settings, session_factory, runner, clock=clock, sleep=clock.sleep)
    assert _row_state(session, settings.vantage)[0] == "CONNECTED"


def test_demo_page_says_the_site_probes_show_the_switch(
    app: FastAPI, client_as: Any, demo_fleet: DemoFleet
) -> None:
    demo_web.install(app, demo_fleet)
    responder: TestClient = client_as("responder")
    html = responder.get("/demo").text
    assert "site probes" in html and "within 15 s" in html and "back to Connected within 15 s" in html
