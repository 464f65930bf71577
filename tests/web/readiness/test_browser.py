"""The cluster page in Debian's chromium: findings filter swapped by HTMX, chart and capacity bars,
an exemption accepted through the form."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.web.readiness.test_clusters import seed

pytestmark = pytest.mark.browser


def test_cluster_page_filters_and_accepts_a_risk(page: Any, live_server: LiveServer) -> None:
    with live_server.session_factory() as session:
        seed(session, "plant7-local")
        session.commit()
    page.goto("/clusters")
    page.click("text=plant7-local")
    page.wait_for_selector("#findings")
    assert page.locator("svg.score-chart polyline").count() >= 1
    assert page.locator("svg.capbar").count() >= 3
    page.evaluate("window.__sameDocument = true")
    page.select_option("select[name=status]", "fail")
    # expect() polls without eval (page.wait_for_function("...") is refused by the CSP).
    expect(page.locator("#findings")).not_to_contain_text("Backups do not rely")
    assert "status=fail" in page.url
    assert page.evaluate("window.__sameDocument") is True
    finding = page.locator("#finding-iam-dependent-workloads")
    finding.locator("details.exempt > summary").click()
    finding.locator("textarea[name=reason]").fill("uploader moves to static keys next sprint")
    finding.locator("button:text('Accept risk')").click()
    page.wait_for_selector("text=Risk accepted for iam-dependent-workloads")
    assert page.locator("#finding-iam-dependent-workloads .badge.accepted").count() == 1
