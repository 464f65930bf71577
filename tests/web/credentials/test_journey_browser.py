"""The on-call journey in Debian's chromium (issue 10): an Outpost of the demo fleet is switched off,
the overview shows it, two clicks from the overview give a kubeconfig that the real kubectl uses
while the Outpost is disconnected; with the password confirmation lapsed (the app's clock moved,
no waiting) the same path still ends with a kubeconfig file, never the confirmation page."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.jobs import probes
from app.models import Cluster, Outpost, User
from app.models.base import utcnow
from app.services.audit import Actor
from app.services.credentials import runs
from app.services.credentials.vocabulary import IssueRequest
from lifeline_demo.fleet import DemoFleet
from tests.conftest import LIVE_ADMIN, TEST_PASSWORD
from tests.fixtures.probes import FakeClock

pytestmark = pytest.mark.browser

SWITCHED = "op-0f1e2d3c4b5a69781"  # Plant 7 Reno, rack A: runs plant7-local
CLUSTER = "plant7-local"


@pytest.fixture
def journey_fleet(aws_endpoint: str) -> Iterator[DemoFleet]:
    fleet = DemoFleet(endpoint_url=aws_endpoint).start(seed_clusters=False)
    yield fleet
    fleet.stop()


@pytest.fixture
def journey_server(live_server: Any) -> Any:
    """The live server with the demo's site-probe settings (its ENI IPs are not on loopback)."""
    settings = live_server.app.state.settings.model_copy(
        update={"vantage": "demo-dashboard", "probe_control_plane_ips": False}
    )
    live_server.app.state.settings = live_server.settings = settings
    return live_server


def _register(factory: Any, fleet: DemoFleet) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_scope(factory) as db:
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
            db.add(outpost)
            db.flush()
            if demo.cluster:
                sim = fleet.clusters[demo.cluster]
                db.add(
                    Cluster(
                        name=demo.cluster,
                        region=demo.region,
                        outpost_pk=outpost.id,
                        endpoint=sim.url,
                        certificate_authority=sim.ca_data,
                        cluster_uid=sim.cluster_uid,
                        health_issues=[],
                    )
                )


def _issue_for_admin(server: Any) -> int:
    """The signed-in admin's own credential on plant7-local, issued while the Region is reachable."""
    with session_scope(server.session_factory) as db:
        admin = db.scalar(select(User).where(User.username == LIVE_ADMIN))
        cluster = db.scalar(select(Cluster).where(Cluster.name == CLUSTER))
        assert admin is not None and cluster is not None
        actor = Actor(name=admin.username, user_id=admin.id, role="admin")
        cluster_pk = cluster.id
    request = IssueRequest(
        cluster_pk=cluster_pk,
        username=f"lifeline:{LIVE_ADMIN}",
        group="lifeline:breakglass",
        cluster_role="cluster-admin",
        lifetime_seconds=7 * 86400,
    )
    credential_id = runs.start_issue(server.settings, server.session_factory, request, actor)
    assert runs.run_issue(server.settings, server.session_factory, credential_id, actor) == "active"
    return credential_id


def _switch_off(server: Any, fleet: DemoFleet) -> None:
    """The demo's outage switch, then the site probes as the scheduler runs them (a fake clock)."""
    runner = probes.Runner.from_settings(server.settings)
    clock = FakeClock()
    probes.probe_cycle(server.settings, server.session_factory, runner, clock=clock, sleep=clock.sleep)
    fleet.set_connected(SWITCHED, False)
    clock.advance(server.settings.probe_interval_seconds)
    probes.probe_cycle(server.settings, server.session_factory, runner, clock=clock, sleep=clock.sleep)


def _kubectl_get_nodes(kubectl: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(path), "--request-timeout=10s", "get", "nodes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _two_clicks_to_a_kubeconfig(page: Any, tmp: Path, name: str, *, confirm_password: bool) -> Path:
    """From the overview: "Get in" on the disconnected row, then "Download kubeconfig"."""
    from playwright.sync_api import expect

    page.goto("/")
    row = page.locator(f"tr[data-outpost-id={SWITCHED}]")
    expect(row).to_have_attribute("data-state", "DISCONNECTED")
    row.get_by_role("link", name=re.compile("^Get in")).click()  # click 1
    panel = page.locator(f"section.access-panel[data-cluster={CLUSTER}]")
    expect(panel).to_contain_text("works without the Region until")
    link = panel.get_by_role("link", name=re.compile("^Download kubeconfig"))
    assert link.get_attribute("download") is None
    if confirm_password:
        link.click()  # click 2: the confirmation is due
        page.wait_for_url(re.compile(r"/reauth\?next="))
        page.fill("input[name=password]", TEST_PASSWORD)
        with page.expect_download() as info:
            page.get_by_role("button", name="Confirm").click()
        expect(page.locator(".download-resume")).to_contain_text("download starts now")
        assert re.search(r"/credentials/\d+\?download=kubeconfig$", page.url)
    else:
        with page.expect_download() as info:
            link.click()  # click 2
    download = info.value
    assert download.suggested_filename.endswith(".kubeconfig")
    path = tmp / name
    download.save_as(path)
    return path


def test_from_disconnected_to_kubectl_in_two_clicks_with_and_without_reauth(
    page: Any, journey_server: Any, journey_fleet: DemoFleet, kubectl: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _register(journey_server.session_factory, journey_fleet)
    _issue_for_admin(journey_server)
    _switch_off(journey_server, journey_fleet)

    page.goto("/")
    row = page.locator(f"tr[data-outpost-id={SWITCHED}]")
    expect(row).to_have_attribute("data-state", "DISCONNECTED")
    expect(row).to_have_class(re.compile(r"\bproblem-row\b"))
    assert re.match(r"^\(1\) Disconnected · .*Lifeline$", page.title()), page.title()
    banner = page.locator("#cutoff-banner")
    expect(banner).to_contain_text("Plant 7")
    expect(banner.get_by_role("link", name=re.compile("^Get in"))).to_be_visible()

    fresh = _two_clicks_to_a_kubeconfig(page, tmp_path, "fresh.kubeconfig", confirm_password=False)
    assert "client-key-data" in fresh.read_text() and "<html" not in fresh.read_text()
    nodes = _kubectl_get_nodes(kubectl, fresh)
    assert nodes.returncode == 0, nodes.stderr
    assert "Ready" in nodes.stdout

    # The confirmation lapses: move the app's clock past LIFELINE_REAUTH_MINUTES.
    lapse = dt.timedelta(minutes=journey_server.settings.reauth_minutes + 1)
    journey_server.app.state.clock = lambda: utcnow() + lapse
    lapsed = _two_clicks_to_a_kubeconfig(page, tmp_path, "lapsed.kubeconfig", confirm_password=True)
    assert "<html" not in lapsed.read_text()
    nodes = _kubectl_get_nodes(kubectl, lapsed)
    assert nodes.returncode == 0, nodes.stderr


def test_credential_page_download_after_the_confirmation_lapsed(
    page: Any, journey_server: Any, journey_fleet: DemoFleet, kubectl: str, tmp_path: Path
) -> None:
    """The issue's reauth.html: the credential page's links, the confirmation lapsed, both files."""
    from playwright.sync_api import expect

    _register(journey_server.session_factory, journey_fleet)
    credential_id = _issue_for_admin(journey_server)
    lapse = dt.timedelta(minutes=journey_server.settings.reauth_minutes + 1)
    journey_server.app.state.clock = lambda: utcnow() + lapse

    page.goto(f"/credentials/{credential_id}")
    page.get_by_role("link", name="Download break-glass bundle (.zip)").click()
    page.wait_for_url(re.compile(r"/reauth\?next="))
    page.fill("input[name=password]", TEST_PASSWORD)
    with page.expect_download() as info:
        page.get_by_role("button", name="Confirm").click()
    assert info.value.suggested_filename.endswith(".zip")
    bundle = tmp_path / "bundle.zip"
    info.value.save_as(bundle)
    assert bundle.read_bytes()[:2] == b"PK"
    expect(page.locator(".download-resume")).to_contain_text("break-glass bundle download starts now")

    # Confirmed now: the kubeconfig link downloads at once, and kubectl accepts the file.
    with page.expect_download() as info:
        page.get_by_role("link", name="Download kubeconfig").click()
    path = tmp_path / "k.kubeconfig"
    info.value.save_as(path)
    nodes = _kubectl_get_nodes(kubectl, path)
    assert nodes.returncode == 0, nodes.stderr
