"""The demo's outage switch runs a drill: the service link is cut, a drill starts on the Outpost and
its live page opens with the first round of checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Cluster, Drill, DrillCheck, Outpost
from lifeline_demo import web as demo_web
from lifeline_demo.fleet import DEMO_OUTPOSTS, DemoFleet


@pytest.fixture
def drill_demo_fleet(aws_endpoint: str) -> Iterator[DemoFleet]:
    fleet = DemoFleet(endpoint_url=aws_endpoint).start()
    yield fleet
    fleet.stop()


def test_the_outage_switch_starts_a_drill_and_opens_its_live_page(
    drill_demo_fleet: DemoFleet, app: FastAPI, client_as: Callable[..., TestClient], session: Session
) -> None:
    demo = next(o for o in DEMO_OUTPOSTS if o.cluster == "werk-stuttgart-local")
    sim = drill_demo_fleet.clusters["werk-stuttgart-local"]
    outpost = Outpost(outpost_id=demo.outpost_id, name=demo.name, region=demo.region, state="CONNECTED")
    session.add(outpost)
    session.flush()
    session.add(
        Cluster(
            name="werk-stuttgart-local",
            region=demo.region,
            outpost_pk=outpost.id,
            endpoint=sim.url,
            certificate_authority=sim.ca_data,
            cluster_uid=sim.cluster_uid,
            health_issues=[],
        )
    )
    session.commit()
    demo_web.install(app, drill_demo_fleet)
    client = client_as("responder")
    page = client.get("/demo")
    assert f'id="drill-{demo.outpost_id}"' in page.text and "Run a drill (cuts the link)" in page.text

    answer = client.post(f"/demo/outposts/{demo.outpost_id}/drill", headers={"HX-Request": "true"})
    assert answer.status_code == 204
    drill = session.scalars(select(Drill)).one()
    assert answer.headers["HX-Redirect"].endswith(f"/drills/{drill.id}")
    assert (
        drill.state == "running" and not sim.connected and not drill_demo_fleet.is_connected(demo.outpost_id)
    )
    session.expire_all()
    checks = {c.item: c for c in session.scalars(select(DrillCheck).where(DrillCheck.drill_id == drill.id))}
    assert checks["iam_refused"].status == "pass"  # the simulated cluster refuses IAM once cut off
    assert checks["breakglass"].status == "fail"  # the demo issues no credential: the drill says so
    live = client.get(f"/drills/{drill.id}")
    assert 'hx-trigger="every 3s"' in live.text and "Each valid break-glass credential" in live.text
    # Pressing it again while the drill runs opens the same drill.
    again = client.post(f"/demo/outposts/{demo.outpost_id}/drill", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].endswith(f"/drills/{drill.id}")
