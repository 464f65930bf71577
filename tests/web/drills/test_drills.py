"""Drill pages and API: responders plan, start, confirm, end and abort; viewers watch and export;
the Outpost page shows the drill on its timeline and beside its uptime; everything is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Drill, DrillCheck
from tests.factories import add_samples, make_outpost
from tests.support.htmx import Rendering


def _audit(session: Session, prefix: str = "drill.") -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
        )
    )


def test_responder_plans_starts_and_ends_a_drill_from_the_pages(
    client_as: Any, session: Session, htmx: Rendering
) -> None:
    outpost = make_outpost(session, name="Plant 4", state="CONNECTED")
    session.commit()
    responder: TestClient = client_as("responder", "rita")
    page = responder.get("/drills")
    assert page.status_code == 200 and "No drill yet" in page.text and "Plan a drill" in page.text

    created = responder.post(
        "/drills",
        data={
            "outpost_id": outpost.outpost_id,
            "title": "Q4 link drill",
            "duration_minutes": "30",
            "ticket_ref": "CHG-7",
            "participants": "bo, cy",
            "checklist": ["disconnect", "local_dns"],
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    drill = session.scalars(select(Drill)).one()
    assert (drill.state, drill.participants, drill.checklist) == (
        "planned",
        ["rita", "bo", "cy"],
        ["disconnect", "local_dns"],
    )

    assert responder.post(f"/drills/{drill.id}/start", follow_redirects=False).status_code == 303
    session.expire_all()
    # The first round ran right after the response: the checklist is there.
    checks = session.scalars(select(DrillCheck).where(DrillCheck.drill_id == drill.id)).all()
    assert {c.item for c in checks} == {"disconnect"}  # no cluster on this Outpost: no cluster items

    live = responder.get(f"/drills/{drill.id}", headers=htmx.headers)
    htmx.check(live)
    assert live.status_code == 200
    assert 'id="drill-live" data-state="running"' in live.text and 'hx-trigger="every 3s"' in live.text
    assert 'data-item="disconnect" data-status="pending"' in live.text

    assert responder.post(f"/drills/{drill.id}/end", follow_redirects=False).status_code == 303
    session.expire_all()
    assert session.get(Drill, drill.id).state == "ended"  # type: ignore[union-attr]
    ended = responder.get(f"/drills/{drill.id}", headers=htmx.headers).text
    assert 'data-state="ended"' in ended and "every 3s" not in ended and "Failures and follow-ups" in ended
    assert _audit(session) == ["drill.plan", "drill.start", "drill.end"]


def test_bad_plan_names_each_field(client_as: Any, session: Session) -> None:
    responder: TestClient = client_as("responder")
    response = responder.post(
        "/drills", data={"outpost_id": "op-00000000000000000", "title": "", "duration_minutes": "0"}
    )
    assert response.status_code == 422
    assert (
        "no Outpost" in response.text
        and "give the drill a title" in response.text
        and "between 1 and 1440" in response.text
    )
    assert session.scalars(select(Drill)).all() == []


def test_viewer_watches_and_exports_but_cannot_run_a_drill(client_as: Any, session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    session.commit()
    responder: TestClient = client_as("responder")
    made = responder.post(
        "/api/v1/drills", json={"outpost_id": outpost.outpost_id, "title": "api drill", "start_now": True}
    )
    assert made.status_code == 201, made.text
    drill_id = made.json()["id"]
    assert made.json()["state"] == "running"

    viewer: TestClient = client_as("viewer")
    page = viewer.get(f"/drills/{drill_id}")
    assert page.status_code == 200 and 'id="drill-end"' not in page.text
    assert viewer.post(f"/drills/{drill_id}/end").status_code == 403
    assert viewer.post(f"/api/v1/drills/{drill_id}/abort", json={"reason": "x"}).status_code == 403
    markdown = viewer.get(f"/drills/{drill_id}/report.md")
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert "# Disconnect drill #" in markdown.text and "attachment" in markdown.headers["content-disposition"]
    data = viewer.get(f"/api/v1/drills/{drill_id}/report", params={"format": "json"}).json()
    assert data["state"] == "running" and data["checks"][0]["item"] == "disconnect"
    assert _audit(session).count("drill.report") == 2

    refused = responder.post(f"/api/v1/drills/{drill_id}/start")
    assert refused.status_code == 409
    aborted = responder.post(f"/api/v1/drills/{drill_id}/abort", json={"reason": "storm warning"})
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"
    assert aborted.json()["abort_reason"] == "storm warning"
    assert responder.get("/api/v1/drills").json()[0]["id"] == drill_id


def test_a_person_confirms_an_item_on_the_page(client_as: Any, session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    session.commit()
    responder: TestClient = client_as("responder", "sam")
    drill_id = responder.post(
        "/api/v1/drills", json={"outpost_id": outpost.outpost_id, "title": "t", "start_now": True}
    ).json()["id"]
    check = DrillCheck(
        drill_id=drill_id,
        item="local_dns",
        subject="c1",
        status="confirm",
        summary="",
        evidence=[],
        baseline={},
        rounds=1,
    )
    session.add(check)
    session.commit()
    refused = responder.post(
        f"/drills/{drill_id}/checks/{check.id}/confirm", data={"outcome": "failed", "note": ""}
    )
    assert refused.status_code == 422 and "say what did not work" in refused.text
    ok = responder.post(
        f"/drills/{drill_id}/checks/{check.id}/confirm",
        data={"outcome": "worked", "note": "dig ok"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    session.expire_all()
    confirmed = session.get(DrillCheck, check.id)
    assert confirmed is not None and (confirmed.status, confirmed.confirmed_by) == ("pass", "sam")
    assert "drill.confirm" in _audit(session)


def test_outpost_page_shows_the_drill_on_its_timeline_and_beside_uptime(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    start = now - dt.timedelta(hours=2)
    add_samples(session, outpost, start, [1.0] * 30 + [0.0] * 45 + [1.0] * 45)
    session.commit()
    drill_id = client.post(
        "/api/v1/drills",
        json={"outpost_id": outpost.outpost_id, "title": "lane drill", "duration_minutes": 45},
    ).json()["id"]
    drill = session.get(Drill, drill_id)
    assert drill is not None
    drill.state, drill.started_at, drill.ended_at = (
        "ended",
        start + dt.timedelta(minutes=30),
        start + dt.timedelta(minutes=75),
    )
    session.commit()
    page = client.get(f"/outposts/{outpost.outpost_id}").text
    assert 'id="drill-lane"' in page and f'data-drill="{drill_id}"' in page
    assert "(drill time excluded: 45 min" in page
    assert "1 during drills, not counted" in page and 'badge drill-running">drill<' in page
    assert f'href="/drills/{drill_id}"' in page
    # The drills panel is in the page, not in its <title> (where it was, as text in the tab's name).
    title = page.split("<title>")[1].split("</title>")[0]
    assert "<" not in title and "Disconnect drills" not in title
    main = page.split('<main id="main"')[1]
    assert 'id="drill-links"' in main and f'href="/drills/{drill_id}"' in main
    api = client.get(f"/api/v1/outposts/{outpost.outpost_id}").json()
    assert api["uptime"]["24h"] == 1.0 and api["drill_seconds"]["24h"] == 2700.0
