"""The words for a cluster cut off from its Region on /clusters, the cluster page and the API, and
Lifeline's own identities on the cluster page (expiry; revoke for admins only)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Cluster, ClusterIdentity, Credential
from app.services.readiness.reachability import CUT_OFF_LABEL
from app.services.readiness.records import PollResult, record_poll
from tests.support.htmx import Rendering


def cut_off_cluster(session: Session) -> tuple[Cluster, dt.datetime]:
    cluster = Cluster(name="edge-cut", region="us-west-2", status="ACTIVE", source="manual")
    session.add(cluster)
    session.flush()
    polled = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    record_poll(
        session,
        cluster,
        PollResult(
            polled_at=polled,
            auth_path="x509",
            reachable=True,
            iam_error="401 Unauthorized",
            api_answered=True,
            x509_ok=True,
        ),
    )
    return cluster, polled


def test_clusters_list_says_cut_off_with_the_time_x509_last_worked(
    client: TestClient, session: Session, htmx: Rendering
) -> None:
    _, polled = cut_off_cluster(session)
    response = client.get("/clusters", headers=htmx.headers)
    htmx.check(response)
    assert CUT_OFF_LABEL in response.text
    assert f"x509 last worked 3 min ago ({polled:%Y-%m-%d %H:%M} UTC)" in response.text
    assert ">unreachable<" not in response.text


def test_cluster_page_and_api_agree(client: TestClient, session: Session) -> None:
    cluster, polled = cut_off_cluster(session)
    page = client.get(f"/clusters/{cluster.name}").text
    assert f"This cluster is {CUT_OFF_LABEL}." in page
    assert "did not answer" not in page
    body = client.get("/api/v1/clusters").json()
    assert body[0]["reachability"] == "cut_off" and body[0]["reachability_label"] == CUT_OFF_LABEL
    assert dt.datetime.fromisoformat(body[0]["x509_last_ok_at"]) == polled


def test_an_unanswered_poll_is_unreachable(client: TestClient, session: Session) -> None:
    cluster = Cluster(name="edge-gone", region="us-west-2", status="ACTIVE", source="manual")
    session.add(cluster)
    session.flush()
    record_poll(
        session,
        cluster,
        PollResult(polled_at=dt.datetime.now(dt.UTC), auth_path="none", reachable=False, error="timed out"),
    )
    listed = client.get("/clusters").text
    assert 'data-reach="unreachable"' in listed and ">unreachable<" in listed
    assert "The Kubernetes API did not answer the last poll" in client.get("/clusters/edge-gone").text


def test_cluster_page_shows_own_identities_with_expiry(
    client: TestClient, client_as: object, session: Session
) -> None:
    cluster, _ = cut_off_cluster(session)
    until = dt.datetime(2027, 1, 5, 12, 0, tzinfo=dt.UTC)
    session.add(
        ClusterIdentity(cluster_pk=cluster.id, purpose="issuer", cluster_role="lifeline:issuer",
                        grantable_roles=["edit", "view"])
    )  # fmt: skip
    session.add(
        Credential(
            cluster_pk=cluster.id,
            kind="issuer",
            username="lifeline:issuer",
            cluster_role="lifeline:issuer",
            key_type="ecdsa-p256",
            custody="server",
            requested_lifetime_seconds=30 * 86400,
            issued_by="lifeline",
            status="active",
            not_before=until - dt.timedelta(days=30),
            not_after=until,
            control_plane_ips=[],
        )
    )
    session.flush()
    page = client.get(f"/clusters/{cluster.name}").text
    assert "Lifeline&#39;s own identities" in page or "Lifeline's own identities" in page
    assert "2027-01-05 12:00 UTC" in page and "bind only edit, view" in page
    assert f"/clusters/{cluster.id}/identities/issuer/revoke" in page
    assert "being issued" not in page and "not yet" in page  # the reader is not there yet
    viewer = client_as("viewer")  # type: ignore[operator]
    seen = viewer.get(f"/clusters/{cluster.name}").text
    assert "2027-01-05 12:00 UTC" in seen and "/identities/issuer/revoke" not in seen
    assert viewer.post(f"/clusters/{cluster.id}/identities/issuer/revoke").status_code == 403
