"""The poller's Prometheus instruments, driven by a real poll against moto's server and read back
through /metrics with prometheus_client's parser."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import connectivity as job
from tests.conftest import free_port, make_settings
from tests.factories import make_outposts, minutes, seed


def _value(client: TestClient, name: str, labels: dict[str, str]) -> float:
    # The per-Outpost series are for a scraper with the token (or LIFELINE_METRICS_PUBLIC=true).
    client.app.state.settings = client.app.state.settings.model_copy(update={"metrics_public": True})  # type: ignore[attr-defined]
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_a_poll_cycle_is_timed_counted_and_its_failures_counted(
    anon_client: TestClient,
    session: Session,
    session_factory: sessionmaker[Session],
    database_url: str,
    aws_endpoint: str,
) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(seconds=30)
    up, down = make_outposts(session, 2, region="eu-west-1")
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=5)
    seed(
        aws_endpoint,
        minutes(t0, [1] * 5, up.outpost_id) + minutes(t0, [1, 1, 0, 0, 0], down.outpost_id),
        "eu-west-1",
    )
    cycles = _value(anon_client, "lifeline_poll_duration_seconds_count", {"job": "connectivity"})
    requests = _value(anon_client, "lifeline_cloudwatch_requests_total", {"region": "eu-west-1"})
    failures = _value(
        anon_client, "lifeline_poll_errors_total", {"region": "eu-west-1", "kind": "unreachable"}
    )

    settings = make_settings(
        database_url,
        aws_endpoint_url=aws_endpoint,
        poll_trailing_window_minutes=5,
        poll_initial_backfill_hours=0,
    )
    job.poll_connectivity(settings, session_factory, now=now)

    assert _value(anon_client, "lifeline_poll_duration_seconds_count", {"job": "connectivity"}) == cycles + 1
    assert _value(anon_client, "lifeline_cloudwatch_requests_total", {"region": "eu-west-1"}) == requests + 1
    state = {"outpost_id": down.outpost_id, "state": "DISCONNECTED"}
    assert _value(anon_client, "lifeline_outpost_state", state) == 1.0

    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
    )
    job.poll_connectivity(closed, session_factory, now=now + dt.timedelta(minutes=1))

    assert (
        _value(anon_client, "lifeline_poll_errors_total", {"region": "eu-west-1", "kind": "unreachable"})
        == failures + 1
    )
    assert _value(anon_client, "lifeline_poll_duration_seconds_count", {"job": "connectivity"}) == cycles + 2
