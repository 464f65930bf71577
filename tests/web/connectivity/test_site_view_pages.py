"""Where the site view shows: the overview's state and "since" (saying which signal), the banner,
the Outpost page's second lane, the cluster page's probe panel and /metrics."""

from __future__ import annotations

import datetime as dt
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app.integrations import probes
from app.models import Cluster
from app.services.connectivity import site
from tests.factories import add_poll_run, add_samples, make_outpost
from tests.support.htmx import Rendering

IAM_REJECTED = site.Observation("DISCONNECTED", ("IAM rejected by plant7-local", "x509 works"))


def _connected_outpost(session: Session, now: dt.datetime, name: str = "Alpha") -> object:
    outpost = make_outpost(
        session,
        name=name,
        state="CONNECTED",
        state_since=now - dt.timedelta(hours=3),
        last_sample_at=now - dt.timedelta(minutes=1),
        last_value=1.0,
    )
    add_samples(session, outpost, now - dt.timedelta(hours=2), [1.0] * 119)
    add_poll_run(session, finished_at=now - dt.timedelta(seconds=40))
    return outpost


def _site_says(session: Session, vantage: str, pk: int, seen: site.Observation, now: dt.datetime) -> None:
    site.update_views(
        session, vantage, {pk: site.Observation("CONNECTED", ())}, 2, now - dt.timedelta(minutes=5)
    )
    for offset in (12, 10):
        site.update_views(session, vantage, {pk: seen}, 2, now - dt.timedelta(seconds=offset))
    session.commit()


def _row(html: str, outpost_id: str) -> str:
    start = html.index(f'data-outpost-id="{outpost_id}"')
    return html[start : html.index("</tr>", start)]


def test_overview_state_and_since_come_from_the_faster_site_view(
    app: FastAPI, client: TestClient, session: Session, htmx: Rendering
) -> None:
    now = dt.datetime.now(dt.UTC)
    vantage = app.state.settings.vantage
    alpha = _connected_outpost(session, now)
    _site_says(session, vantage, alpha.id, IAM_REJECTED, now)  # type: ignore[attr-defined]

    response = client.get("/", headers=htmx.headers)
    htmx.check(response)
    html = response.text
    row = _row(html, alpha.outpost_id)  # type: ignore[attr-defined]
    assert 'data-state="DISCONNECTED"' in row and 'data-source="site view"' in row
    assert f"site view from {vantage}" in row and "CloudWatch has not reported yet" in row
    assert "IAM rejected by plant7-local" in row  # the evidence, in the cell's title
    # "Since" is the site view's first observation (seconds ago), not CloudWatch's 3 h.
    assert re.search(r"\b1\d s ago <span class=\"when-abs\">", row) and "3 h ago" not in row
    assert 'data-state-count="DISCONNECTED">1<' in html and 'data-state-count="CONNECTED">0<' in html
    # The state filter follows the same verdict.
    filtered = client.get("/?state=DISCONNECTED", headers=htmx.headers).text
    assert alpha.outpost_id in filtered  # type: ignore[attr-defined]


def test_another_vantages_view_is_not_this_dashboards(client: TestClient, session: Session) -> None:
    now = dt.datetime.now(dt.UTC)
    alpha = _connected_outpost(session, now)
    _site_says(session, "some-other-site", alpha.id, IAM_REJECTED, now)  # type: ignore[attr-defined]
    row = _row(client.get("/").text, alpha.outpost_id)  # type: ignore[attr-defined]
    assert 'data-state="CONNECTED"' in row and 'data-source="CloudWatch"' in row


def test_banner_comes_from_the_probes_within_seconds(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    now = dt.datetime.now(dt.UTC)
    _connected_outpost(session, now)
    vantage = app.state.settings.vantage
    assert "cannot reach AWS" not in client.get("/account").text
    results = [
        site.Located(
            probes.ProbeResult(
                kind, f"{probes.SERVICE_HOSTS[kind]}.us-west-2", probes.TIMEOUT, 3.0, "no answer in time"
            ),
            "us-west-2",
        )
        for kind in probes.AWS_KINDS
    ]
    site.record_results(session, vantage, results, now - dt.timedelta(seconds=3))
    session.commit()
    html = client.get("/account").text
    assert "Lifeline cannot reach AWS since" in html
    assert f"AWS unreachable from this dashboard according to its site probes from {vantage}" in html


def test_outpost_page_has_a_site_lane(app: FastAPI, client: TestClient, session: Session) -> None:
    now = dt.datetime.now(dt.UTC)
    vantage = app.state.settings.vantage
    alpha = _connected_outpost(session, now)
    _site_says(session, vantage, alpha.id, IAM_REJECTED, now)  # type: ignore[attr-defined]
    html = client.get(f"/outposts/{alpha.outpost_id}").text  # type: ignore[attr-defined]
    lane = html[html.index('id="site-lane"') :]
    assert f"probes from {vantage}" in lane[:400]
    assert 'data-state="DISCONNECTED"' in lane and 'data-state="CONNECTED"' in lane
    assert 'id="outpost-verdict"' in html and "Cut off from the Region since" in html
    # The lane's stretches are listed in a disclosure too, not in tooltips alone (issue 19).
    details = lane[lane.index('<details class="strip-details') : lane.index("</details>")]
    items = re.findall(r"<li>.*?</li>", details)
    assert len(items) == lane[: lane.index("<details")].count("data-state=")
    assert any("disconnected (site view" in item and " UTC: " in item for item in items)


def test_cluster_page_and_metrics_show_probe_results(
    app: FastAPI, client: TestClient, anon_client: TestClient, session: Session
) -> None:
    now = dt.datetime.now(dt.UTC)
    vantage = app.state.settings.vantage
    alpha = _connected_outpost(session, now)
    cluster = Cluster(
        name="plant7-local", region="us-west-2", outpost_pk=alpha.id, endpoint="https://127.0.0.1:1"
    )  # type: ignore[attr-defined]
    session.add(cluster)
    session.flush()
    site.record_results(
        session,
        vantage,
        [
            site.Located(
                probes.ProbeResult(probes.KUBE_LIVEZ, "plant7-local", probes.OK, 0.0042, "livez ok"),
                "us-west-2",
                cluster.id,
            ),
            site.Located(
                probes.ProbeResult(probes.KUBE_IAM, "plant7-local", probes.REJECTED, 0.0123, "401"),
                "us-west-2",
                cluster.id,
            ),
        ],
        now,
    )
    session.commit()
    html = client.get("/clusters/plant7-local").text
    panel = html[html.index('id="cluster-probes"') :]
    assert f"From {vantage} (this dashboard)" in panel
    assert "4.2 ms" in panel and "12.3 ms" in panel and 'data-result="rejected"' in panel

    app.state.settings = app.state.settings.model_copy(update={"metrics_public": True})
    text = anon_client.get("/metrics").text
    samples = {
        (s.name, s.labels.get("kind"), s.labels.get("vantage")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("lifeline_probe_up", probes.KUBE_LIVEZ, vantage)] == 1.0
    assert samples[("lifeline_probe_up", probes.KUBE_IAM, vantage)] == 0.0
    assert abs(samples[("lifeline_probe_latency_seconds", probes.KUBE_IAM, vantage)] - 0.0123) < 1e-6
    assert "lifeline_probe_duration_seconds" in text
