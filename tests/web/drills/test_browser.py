"""The live drill page in Debian's chromium: plan and start, the checks appear and turn green or red
by themselves (HTMX refresh), end, and the report."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from app.db import session_scope
from app.models import Cluster, Outpost
from app.services.connectivity import site
from tests.web.drills.conftest import BROWSER_VANTAGE

pytestmark = pytest.mark.browser

OUTPOST = "op-0c0ffee0c0ffee0c0"


def test_live_drill_page_turns_checks_green_and_red_then_reports(
    page: Any, live_server: Any, simulated_cluster: Any
) -> None:
    from playwright.sync_api import expect

    sim = simulated_cluster(name="plant5-local")
    sim.disconnect()
    now = dt.datetime.now(dt.UTC)
    with session_scope(live_server.session_factory) as db:
        outpost = Outpost(
            outpost_id=OUTPOST,
            name="Plant 5",
            region="us-west-2",
            state="DISCONNECTED",
            state_since=now - dt.timedelta(minutes=4),
        )
        db.add(outpost)
        db.flush()
        db.add(
            Cluster(
                name="plant5-local",
                region="us-west-2",
                outpost_pk=outpost.id,
                endpoint=sim.url,
                certificate_authority=sim.ca_data,
                cluster_uid=sim.cluster_uid,
                health_issues=[],
            )
        )
        seen = site.Observation("DISCONNECTED", ("IAM rejected by plant5-local",))
        site.update_views(db, BROWSER_VANTAGE, {outpost.id: seen}, 1, now - dt.timedelta(minutes=3))

    page.goto("/drills")
    expect(page.get_by_text("No drill yet")).to_be_visible()
    page.select_option("select[name=outpost_id]", OUTPOST)
    page.fill("input[name=title]", "Browser drill")
    page.fill("input[name=duration_minutes]", "15")
    for item in (
        "lifeline_reads",
        "issue_new",
        "nodes_workloads",
        "predictions",
        "local_dns",
        "laptop_kubeconfig",
    ):
        page.uncheck(f"input[name=checklist][value={item}]")
    page.check("input[name=start_now]")
    page.get_by_role("button", name="Plan the drill").click()
    page.wait_for_url(re.compile(r"/drills/\d+$"))
    expect(page.locator("#drill-state")).to_have_text("running")
    # The first round runs after the page was served: the rows arrive through the HTMX refresh.
    expect(page.locator("tr[data-item=disconnect]")).to_have_attribute("data-status", "pass", timeout=20_000)
    expect(page.locator("tr[data-item=iam_refused]")).to_have_attribute("data-status", "pass", timeout=20_000)
    breakglass = page.locator("tr[data-item=breakglass]")
    expect(breakglass).to_have_attribute("data-status", "fail", timeout=20_000)
    expect(breakglass).to_contain_text("No valid break-glass credential")
    expect(page.locator("#drill-timeline")).to_contain_text("item_failed")

    page.get_by_role("button", name="End the drill").click()
    expect(page.locator("#drill-state")).to_have_text("ended")
    expect(page.locator("#drill-outcome")).to_have_text("failed")
    expect(page.locator("#drill-follow-ups")).to_contain_text("Fix: Each valid break-glass credential")
    with page.expect_download() as download:
        page.click("#report-md")
    path = download.value.path()
    assert path is not None
    text = Path(path).read_text(encoding="utf-8")
    assert "# Disconnect drill #" in text and "Browser drill" in text and "**failed**" in text
