"""The issue form in Debian's chromium: custody switches the fields without JS, steps appear live."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.db import session_scope
from app.models import Cluster

pytestmark = pytest.mark.browser


def test_issue_in_the_browser_shows_the_steps_live(
    page: Any, live_server: Any, simulated_cluster: Any
) -> None:
    from playwright.sync_api import expect

    sim = simulated_cluster(name="edge-browser")
    with session_scope(live_server.session_factory) as db:
        db.add(
            Cluster(
                name="edge-browser",
                region="us-west-2",
                endpoint=sim.url,
                certificate_authority=sim.ca_data,
                cluster_uid=sim.cluster_uid,
                health_issues=[],
            )
        )
    page.goto("/credentials")
    expect(page.get_by_text("No emergency credentials yet")).to_be_visible()
    page.get_by_role("link", name="Issue a credential").first.click()
    page.select_option("select[name=cluster]", label="edge-browser (us-west-2)")
    # Choosing a cluster swaps in its issuing path (HTMX): let it land before clicking below it,
    # or the click can hit where a radio was before the form grew.
    expect(page.locator("#issuing-path [data-can-issue]")).to_have_count(1)
    page.wait_for_load_state("networkidle")
    # The CSR upload only shows for "I upload my own CSR" (CSS :has, no script).
    expect(page.locator("textarea[name=csr]")).to_be_hidden()
    page.check("input[name=custody][value=uploaded-csr]")
    expect(page.locator("textarea[name=csr]")).to_be_visible()
    page.check("input[name=custody][value=server]")
    page.fill("input[name=lifetime]", "2")
    page.select_option("select[name=lifetime_unit]", "hours")
    page.get_by_role("button", name="Issue and verify").click()
    page.wait_for_url(re.compile(r"/credentials/\d+$"))
    steps = page.locator("ol.cred-steps")
    expect(steps).to_contain_text("CertificateSigningRequest created")
    expect(steps).to_contain_text("Verified against the cluster", timeout=20_000)
    expect(page.get_by_role("link", name="Download kubeconfig")).to_be_visible(timeout=20_000)
    expect(page.locator("#credential-detail .badge").first).to_have_text("active")
