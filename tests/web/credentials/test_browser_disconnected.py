"""In Debian's chromium: during a disconnect, with no LIFELINE_ISSUER_KUBECONFIG, the issue form says
Lifeline will issue with its own x509 issuer identity, issuing works, and the downloaded kubeconfig
answers the real `kubectl get nodes` while the Outpost is still cut off."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.db import session_scope
from app.jobs import readiness
from app.models import Cluster
from app.services.credentials import runs

pytestmark = pytest.mark.browser


def test_issue_a_new_credential_during_a_disconnect(
    page: Any, live_server: Any, simulated_cluster: Any, kubectl: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    assert live_server.settings.issuer_kubeconfig is None
    sim = simulated_cluster(name="edge-dark")
    with session_scope(live_server.session_factory) as db:
        cluster = Cluster(
            name="edge-dark",
            region="us-west-2",
            endpoint=sim.url,
            certificate_authority=sim.ca_data,
            cluster_uid=sim.cluster_uid,
            health_issues=[],
        )
        db.add(cluster)
        db.flush()
        cluster_id = cluster.id
    # While connected, Lifeline gives itself its identities (the scheduler's upkeep job).
    outcomes = runs.upkeep_identities(live_server.settings, live_server.session_factory)
    assert set(outcomes.values()) == {"issued: active"}, outcomes
    sim.disconnect()
    readiness.poll_clusters(live_server.settings, live_server.session_factory)

    page.goto(f"/credentials/new?cluster={cluster_id}")
    notice = page.locator("#issuing-path")
    expect(notice).to_contain_text("IAM unavailable")
    expect(notice).to_contain_text("Lifeline will issue with its own x509 issuer identity, valid until")
    page.select_option("select[name=cluster_role]", "cluster-admin")
    page.fill("input[name=lifetime]", "2")
    page.select_option("select[name=lifetime_unit]", "hours")
    page.get_by_role("button", name="Issue and verify").click()
    page.wait_for_url(re.compile(r"/credentials/\d+$"))
    link = page.get_by_role("link", name="Download kubeconfig")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator("ol.cred-steps")).to_contain_text("as Lifeline's own issuer identity")
    with page.expect_download() as info:
        link.click()
    target = tmp_path / "dark.kubeconfig"
    info.value.save_as(target)
    assert "apiVersion: v1" in target.read_text() and "<html" not in target.read_text()
    assert not sim.connected
    nodes = subprocess.run(
        [kubectl, "--kubeconfig", str(target), "--request-timeout=10s", "get", "nodes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nodes.returncode == 0, nodes.stderr
