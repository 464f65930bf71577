"""The overview page: both renderings, filters and sort, empty and error states, poll status."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.web.page_cache import DataVersion
from tests.factories import add_poll_run, add_samples, make_outpost
from tests.support.htmx import Rendering


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-outpost-id="([^"]+)"', html)


def seed_fleet(session: Session, now: dt.datetime) -> dict[str, str]:
    ids = {}
    for name, region, state in [
        ("Alpha", "us-west-2", "CONNECTED"),
        ("Bravo", "us-west-2", "DISCONNECTED"),
        ("Charlie", "eu-west-1", "DEGRADED"),
        ("Delta", "eu-west-1", "UNKNOWN"),
    ]:
        outpost = make_outpost(
            session,
            name=name,
            region=region,
            state=state,
            state_since=now - dt.timedelta(hours=3),
            last_sample_at=now - dt.timedelta(minutes=1),
        )
        ids[name] = outpost.outpost_id
        value = {"CONNECTED": 1.0, "DISCONNECTED": 0.0, "DEGRADED": 0.5}.get(state)
        if value is not None:
            add_samples(session, outpost, now - dt.timedelta(hours=2), [value] * 120)
    add_poll_run(session, finished_at=now - dt.timedelta(seconds=40))
    return ids


def test_overview_lists_every_outpost_worst_first(
    client: TestClient, session: Session, now: dt.datetime, htmx: Rendering
) -> None:
    ids = seed_fleet(session, now)
    response = client.get("/", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    html = response.text
    assert _row_ids(html) == [ids["Bravo"], ids["Charlie"], ids["Delta"], ids["Alpha"]]
    partial = htmx.partial
    assert ("<html" in html) is not partial
    assert 'id="overview-live"' in html and 'hx-trigger="every 30s"' in html  # the default
    assert 'data-state-count="DISCONNECTED">1<' in html
    assert "Data last fetched" in html
    # Bravo: disconnected for the whole 2 h it has data: 24 h uptime 0%, Alpha 100%.
    bravo = html[html.index(f'data-outpost-id="{ids["Bravo"]}"') :]
    assert '<span class="badge disconnected">Disconnected</span>' in bravo[:2000]
    assert "0.00%" in bravo[:3000]
    alpha = html[html.index(f'data-outpost-id="{ids["Alpha"]}"') :]
    assert "100.00%" in alpha[:3000]
    assert 'class="x n' in bravo[:5000]  # its strip ends in red


def test_filter_by_state_and_region(
    client: TestClient, session: Session, now: dt.datetime, htmx: Rendering
) -> None:
    ids = seed_fleet(session, now)
    assert _row_ids(client.get("/?state=disconnected", headers=htmx.headers).text) == [ids["Bravo"]]
    assert _row_ids(client.get("/?region=eu-west-1", headers=htmx.headers).text) == [
        ids["Charlie"],
        ids["Delta"],
    ]
    response = client.get("/?region=eu-west-1&state=CONNECTED", headers=htmx.headers)
    htmx.check(response)
    html = response.text
    assert _row_ids(html) == []
    assert "No Outpost matches these filters" in html
    # The refresh keeps the filters: HTMX polls the same filtered URL.
    assert 'hx-get="/?state=CONNECTED&amp;region=eu-west-1"' in html


def test_sort_keys(client: TestClient, session: Session, now: dt.datetime) -> None:
    ids = seed_fleet(session, now)
    assert _row_ids(client.get("/?sort=name").text) == [
        ids[n] for n in ("Alpha", "Bravo", "Charlie", "Delta")
    ]
    assert _row_ids(client.get("/?sort=-name").text) == [
        ids[n] for n in ("Delta", "Charlie", "Bravo", "Alpha")
    ]
    # Lowest 24 h uptime first; no data (Delta) sorts before any figure.
    assert _row_ids(client.get("/?sort=uptime").text) == [
        ids[n] for n in ("Delta", "Bravo", "Charlie", "Alpha")
    ]
    html = client.get("/?sort=name").text
    assert 'href="/?sort=-name"' in html  # clicking the current column reverses it


def test_bad_filters_are_422_with_the_reason(client: TestClient, htmx: Rendering) -> None:
    response = client.get("/?state=ONFIRE&sort=colour", headers=htmx.headers)
    assert response.status_code == 422
    htmx.check(response)
    assert (
        "state must be one of CONNECTED, DEGRADED, DISCONNECTED, UNKNOWN (got &#39;ONFIRE&#39;)"
        in response.text
    )
    assert "sort must be one of" in response.text


def test_empty_fleet_says_how_to_add_one(client: TestClient, htmx: Rendering) -> None:
    response = client.get("/", headers=htmx.headers)
    htmx.check(response)
    html = response.text
    assert "No Outposts yet" in html
    assert 'href="/fleet"' in html
    assert "LIFELINE_FLEET_FILE" in html
    assert "lifeline fleet add-outpost" in html
    assert "No connectivity poll has finished yet" in html


def test_failed_poll_and_outpost_errors_are_shown(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    make_outpost(
        session, name="Wrong account", last_error="No data: metrics live in the Outpost owner's account"
    )
    make_outpost(session, name="Denied", last_error="AccessDenied: not authorized to perform GetMetricData")
    add_poll_run(session, finished_at=now - dt.timedelta(minutes=10))
    add_poll_run(
        session,
        finished_at=now - dt.timedelta(minutes=1),
        outcome="unreachable",
        error="EndpointConnectionError: monitoring.us-west-2",
    )
    html = client.get("/").text
    assert "The last connectivity poll failed" in html
    assert "EndpointConnectionError: monitoring.us-west-2" in html
    assert "Last good data 10 min ago" in html
    assert "AccessDenied: not authorized" in html
    assert "No data: metrics live in the Outpost owner" in html
    assert "2 with errors" in html
    # The dashboard's own vantage banner, on every page.
    assert "Lifeline cannot reach AWS since" in html
    assert "usually means the site lost the Region too" in html


def test_vantage_banner_absent_when_polls_succeed(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    add_poll_run(session, finished_at=now - dt.timedelta(minutes=1), outcome="unreachable", error="boom")
    add_poll_run(session, finished_at=now)
    assert "cannot reach AWS" not in client.get("/").text


def test_database_error_is_a_503_that_says_what_failed(client: TestClient, session: Session) -> None:
    make_outpost(session)
    session.execute(text("DROP TABLE hourly_rollups"))
    response = client.get("/")
    assert response.status_code == 503
    assert "Could not read the database" in response.text
    assert "hourly_rollups" in response.text


@pytest.fixture
def fresh_fingerprint(app: FastAPI) -> None:
    """Read the data version on every request (production memoizes it for 2 s between commits; these
    tests change data with a flush, which is not a commit)."""
    app.state.data_version = DataVersion(memo=0)


@pytest.mark.usefixtures("fresh_fingerprint")
def test_cache_serves_new_data_after_a_poll(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session, name="Echo", state="CONNECTED")
    add_poll_run(session, finished_at=now - dt.timedelta(minutes=1))
    assert "Connected</span>" in client.get("/").text
    outpost.state = "DISCONNECTED"
    add_poll_run(session, finished_at=now)
    session.flush()
    html = client.get("/", headers={"HX-Request": "true"}).text
    assert '<span class="badge disconnected">Disconnected</span>' in html


@pytest.mark.usefixtures("fresh_fingerprint")
def test_banner_follows_a_run_that_finishes_unreachable(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    add_poll_run(session, finished_at=now - dt.timedelta(minutes=2))
    running = add_poll_run(session, finished_at=now - dt.timedelta(seconds=5))
    running.outcome, running.finished_at = "running", None
    session.flush()
    assert "cannot reach AWS" not in client.get("/").text
    running.outcome, running.finished_at, running.error = "unreachable", now, "ConnectTimeoutError"
    session.flush()
    html = client.get("/").text
    assert "cannot reach AWS" in html and "ConnectTimeoutError" in html
    assert "The last connectivity poll failed" in html  # the cached table follows too
