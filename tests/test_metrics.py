"""/metrics: the Prometheus text format, parsed with prometheus_client's own parser."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app.metrics import POLL_DURATION, POLL_ERRORS
from tests.factories import add_poll_run, make_outpost


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_anonymous_metrics_are_aggregate_only_by_default(
    anon_client: TestClient, session: Session, now: dt.datetime
) -> None:
    """Issue 12: /metrics listed every Outpost anonymously by default."""
    down = make_outpost(session, state="DISCONNECTED", last_sample_at=now, last_value=0.0)
    make_outpost(session, state="CONNECTED", last_sample_at=now, last_value=1.0)
    response = anon_client.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    assert "lifeline_outpost_state" not in samples and down.outpost_id not in response.text
    counts = {lab["state"]: v for lab, v in samples["lifeline_outposts"]}
    assert counts == {"CONNECTED": 1.0, "DEGRADED": 0.0, "DISCONNECTED": 1.0, "UNKNOWN": 0.0}


def test_metrics_one_hot_state_and_poll_figures(
    app: Any, anon_client: TestClient, session: Session, now: dt.datetime
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"metrics_public": True})
    down = make_outpost(
        session,
        state="DISCONNECTED",
        region="eu-west-1",
        last_sample_at=now - dt.timedelta(minutes=5),
        last_value=0.0,
        last_error="AccessDenied",
    )
    up = make_outpost(session, state="CONNECTED", last_sample_at=now, last_value=1.0)
    add_poll_run(session, finished_at=now, duration=3.5)
    POLL_DURATION.labels(job="connectivity").observe(1.25)
    POLL_ERRORS.labels(job="connectivity", region="eu-west-1", kind="throttled").inc()

    response = anon_client.get("/metrics")  # public: Prometheus does not sign in

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    states = {(lab["outpost_id"], lab["state"]): v for lab, v in samples["lifeline_outpost_state"]}
    assert states[(down.outpost_id, "DISCONNECTED")] == 1.0
    assert states[(down.outpost_id, "CONNECTED")] == 0.0
    assert sum(v for (oid, _), v in states.items() if oid == up.outpost_id) == 1.0
    assert states[(up.outpost_id, "CONNECTED")] == 1.0
    ages = {lab["outpost_id"]: v for lab, v in samples["lifeline_outpost_last_sample_age_seconds"]}
    assert 290 <= ages[down.outpost_id] <= 600
    errors = {lab["outpost_id"]: v for lab, v in samples["lifeline_outpost_poll_error"]}
    assert errors == {down.outpost_id: 1.0, up.outpost_id: 0.0}
    assert samples["lifeline_poll_last_duration_seconds"] == [({"job": "connectivity"}, 3.5)]
    counts = [v for lab, v in samples["lifeline_poll_duration_seconds_count"] if lab["job"] == "connectivity"]
    assert counts and counts[0] >= 1
    throttled = [
        v
        for lab, v in samples["lifeline_poll_errors_total"]
        if lab == {"job": "connectivity", "region": "eu-west-1", "kind": "throttled"}
    ]
    assert throttled and throttled[0] >= 1
