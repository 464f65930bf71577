"""The overview and Outpost pages in Debian's chromium: rows, filters, the HTMX refresh, the chart."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.factories import add_poll_run, add_samples, make_outpost

pytestmark = pytest.mark.browser


def _seed(live_server: LiveServer) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    ids = {}
    with live_server.session_factory() as session:
        for name, region, state in [
            ("Alpha", "us-west-2", "CONNECTED"),
            ("Bravo", "us-west-2", "DISCONNECTED"),
            ("Charlie", "eu-west-1", "CONNECTED"),
        ]:
            outpost = make_outpost(session, name=name, region=region, state=state, last_sample_at=now)
            add_samples(
                session, outpost, now - dt.timedelta(hours=6), [1.0 if state == "CONNECTED" else 0.0] * 360
            )
            ids[name] = outpost.outpost_id
        add_poll_run(session, finished_at=now)
        session.commit()
    return ids


def test_overview_rows_and_filter_without_reload(page: Any, live_server: LiveServer) -> None:
    ids = _seed(live_server)
    page.goto("/")
    rows = page.locator("#outposts-table tbody tr")
    assert rows.count() == 3
    assert rows.first.get_attribute("data-outpost-id") == ids["Bravo"]  # worst first
    page.evaluate("window.__sameDocument = true")

    page.select_option("select[name=state]", "CONNECTED")
    expect(page.locator("#outposts-table tbody tr")).to_have_count(2)  # no eval: the CSP forbids it
    assert "state=CONNECTED" in page.url
    assert page.evaluate("window.__sameDocument") is True
    page.select_option("select[name=region]", "eu-west-1")
    expect(page.locator("#outposts-table tbody tr")).to_have_count(1)  # no eval: the CSP forbids it
    assert page.locator("#outposts-table tbody tr").get_attribute("data-outpost-id") == ids["Charlie"]

    # Without JavaScript the same form works as a plain GET.
    page.goto("/?state=DISCONNECTED")
    assert page.locator("#outposts-table tbody tr").count() == 1


def test_overview_refreshes_itself(page: Any, live_server: LiveServer) -> None:
    ids = _seed(live_server)
    live_server.app.state.settings.overview_refresh_seconds = 1
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    assert page.locator(f'tr[data-outpost-id="{ids["Alpha"]}"]').get_attribute("data-state") == "CONNECTED"

    with live_server.session_factory() as session:
        from app.models import Outpost

        outpost = session.query(Outpost).filter_by(outpost_id=ids["Alpha"]).one()
        outpost.state = "DISCONNECTED"
        add_poll_run(session, finished_at=dt.datetime.now(dt.UTC))
        session.commit()

    page.wait_for_selector(f'tr[data-outpost-id="{ids["Alpha"]}"][data-state="DISCONNECTED"]', timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator('[data-state-count="DISCONNECTED"]').inner_text() == "2"


def test_outpost_page_chart_and_range_switch(page: Any, live_server: LiveServer) -> None:
    ids = _seed(live_server)
    page.goto(f"/outposts/{ids['Bravo']}")
    assert page.locator("#timeline svg.timeline").get_attribute("data-range") == "24h"
    assert page.locator("#timeline svg.timeline rect.x").count() >= 1
    page.evaluate("window.__sameDocument = true")

    page.click("#range-switch a:text-is('7d')")
    page.wait_for_selector("#timeline svg.timeline[data-range='7d']")
    assert page.url.endswith("?range=7d")
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#range-switch a[aria-current='true']").inner_text() == "7d"
    page.click("#range-switch a:text-is('6h')")
    page.wait_for_selector("#timeline svg.timeline[data-range='6h']")
    assert page.locator("#incidents-table, #no-incidents").count() == 1
