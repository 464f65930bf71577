""" "Poll now" on the cluster page: responders and admins poll one cluster at once; audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Cluster, PollRun
from app.services.readiness import records


@pytest.fixture
def settings_overrides(aws_endpoint: str) -> dict[str, Any]:
    return {"aws_endpoint_url": aws_endpoint}


@pytest.fixture
def polled_sim_cluster(simulated_cluster: Any, session: Session) -> Cluster:
    sim = simulated_cluster(name="edge-poll")
    cluster = Cluster(
        name="edge-poll",
        region="us-west-2",
        endpoint=sim.url,
        certificate_authority=sim.ca_data,
        cluster_uid=sim.cluster_uid,
        health_issues=[],
    )
    session.add(cluster)
    session.commit()
    return cluster


def test_poll_now_polls_the_cluster_and_is_audited(
    client_as: Any, polled_sim_cluster: Cluster, session: Session, htmx: Any
) -> None:
    responder = client_as("responder")
    page = responder.get(f"/clusters/{polled_sim_cluster.name}")
    assert "Poll now" in page.text and "Not polled yet" in page.text
    answer = responder.post(
        f"/clusters/{polled_sim_cluster.name}/poll?region=us-west-2",
        headers=htmx.headers,
        follow_redirects=False,
    )
    assert answer.status_code in (204, 303)
    target = answer.headers.get("HX-Redirect") or answer.headers["location"]
    assert "Polled+now" in target or "Polled%20now" in target
    session.expire_all()
    state = records.get_state(session, polled_sim_cluster)
    assert state is not None and state.last_polled_at is not None and state.auth_path == "iam"
    runs = session.scalars(select(PollRun).where(PollRun.scope == "us-west-2/edge-poll")).all()
    assert len(runs) == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "readiness.poll_now")).one()
    assert event.target == "cluster:us-west-2/edge-poll" and event.actor.startswith("responder")
    assert "Polled now" in responder.get(target).text


def test_viewers_see_no_poll_button_and_are_refused(client_as: Any, polled_sim_cluster: Cluster) -> None:
    viewer = client_as("viewer")
    assert "Poll now" not in viewer.get(f"/clusters/{polled_sim_cluster.name}").text
    assert viewer.post(f"/clusters/{polled_sim_cluster.name}/poll").status_code == 403


def test_the_api_polls_now_with_a_responder(client_as: Any, polled_sim_cluster: Cluster) -> None:
    answer = client_as("responder").post(f"/api/v1/clusters/{polled_sim_cluster.name}/poll")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "edge-poll" and body["last_polled_at"] is not None and body["auth_path"] == "iam"
    assert client_as("viewer").post(f"/api/v1/clusters/{polled_sim_cluster.name}/poll").status_code == 403
