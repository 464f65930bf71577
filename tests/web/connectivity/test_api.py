"""The connectivity JSON API: shapes, validation errors and the OpenAPI document."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import (
    add_incident,
    add_poll_run,
    add_rollups,
    add_samples,
    make_outpost,
)


def test_list_shape_and_uptime(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(
        session,
        name="Plant 7",
        state="DEGRADED",
        state_since=now - dt.timedelta(hours=1),
        last_sample_at=now - dt.timedelta(minutes=1),
        last_value=0.5,
        account_id="123456789012",
        last_error="AccessDenied: nope",
    )
    # 11 h connected, then 12 h at half, in the last 23 h (the first hour of the window unknown).
    add_samples(session, outpost, now - dt.timedelta(hours=23), [1.0] * 660 + [0.5] * 720)
    add_poll_run(session, finished_at=now)

    body = client.get("/api/v1/outposts").json()

    assert body["counts"] == {"CONNECTED": 0, "DEGRADED": 1, "DISCONNECTED": 0, "UNKNOWN": 0}
    assert body["last_poll"]["outcome"] == "ok"
    [item] = body["outposts"]
    assert item["outpost_id"] == outpost.outpost_id
    assert item["name"] == "Plant 7"
    assert item["region"] == "us-west-2"
    assert item["account_id"] == "123456789012"
    assert item["state"] == "DEGRADED"
    assert dt.datetime.fromisoformat(item["state_since"]) == now - dt.timedelta(hours=1)
    assert dt.datetime.fromisoformat(item["last_sample_at"]) == now - dt.timedelta(minutes=1)
    assert item["last_error"] == "AccessDenied: nope"
    assert set(item["uptime"]) == {"24h", "7d", "30d", "90d"}
    assert item["uptime"]["24h"] == pytest.approx((660 + 360) / 1380)
    assert item["unknown_seconds"]["24h"] == pytest.approx(3600, abs=60)
    assert item["unknown_seconds"]["90d"] > 89 * 86400
    assert item["url"].endswith(f"/outposts/{outpost.outpost_id}")


def test_list_filters_and_rejects_unknown_state(client: TestClient, session: Session) -> None:
    make_outpost(session, state="CONNECTED", region="us-west-2")
    down = make_outpost(session, state="DISCONNECTED", region="eu-west-1")
    body = client.get("/api/v1/outposts", params={"state": "disconnected"}).json()
    assert [o["outpost_id"] for o in body["outposts"]] == [down.outpost_id]
    assert (
        client.get("/api/v1/outposts", params={"region": "us-west-2"}).json()["outposts"][0]["region"]
        == "us-west-2"
    )
    response = client.get("/api/v1/outposts", params={"state": "sideways"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "state"]


def test_detail_with_open_incident(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session, state="DISCONNECTED")
    add_rollups(session, outpost, now.replace(minute=0) - dt.timedelta(days=10), [(3600.0, 3600.0)] * 24 * 9)
    add_incident(session, outpost, now - dt.timedelta(hours=3), now - dt.timedelta(hours=2), worst_value=0.5)
    add_incident(
        session, outpost, now - dt.timedelta(minutes=30), None, last_below_at=now - dt.timedelta(minutes=1)
    )

    body = client.get(f"/api/v1/outposts/{outpost.outpost_id.upper().replace('OP-', 'op-')}").json()

    assert body["outpost_id"] == outpost.outpost_id
    assert body["uptime"]["7d"] == 1.0
    assert body["open_incident"]["ongoing"] is True
    assert body["open_incident"]["ended_at"] is None
    assert body["open_incident"]["duration_seconds"] == 29 * 60


def test_incidents_newest_first(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session)
    add_incident(
        session,
        outpost,
        now - dt.timedelta(days=2),
        now - dt.timedelta(days=2) + dt.timedelta(minutes=7),
        worst_value=0.0,
    )
    add_incident(session, outpost, now - dt.timedelta(hours=5), now - dt.timedelta(hours=4), worst_value=0.25)

    body = client.get(f"/api/v1/outposts/{outpost.outpost_id}/incidents").json()

    assert body["outpost_id"] == outpost.outpost_id
    assert [(i["duration_seconds"], i["worst_value"], i["ongoing"]) for i in body["incidents"]] == [
        (3600.0, 0.25, False),
        (420.0, 0.0, False),
    ]
    assert (
        len(client.get(f"/api/v1/outposts/{outpost.outpost_id}/incidents?limit=1").json()["incidents"]) == 1
    )


def test_samples_in_range(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    start = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
    add_samples(session, outpost, start, [1.0, 0.0, None, 0.5, 1.0])

    body = client.get(
        f"/api/v1/outposts/{outpost.outpost_id}/samples",
        params={"start": "2026-11-01T10:01:00Z", "end": "2026-11-01T10:04:00+00:00"},
    ).json()

    assert body["outpost_id"] == outpost.outpost_id
    assert [(s["ts"], s["value"], s["period_seconds"]) for s in body["samples"]] == [
        ("2026-11-01T10:01:00Z", 0.0, 60),
        ("2026-11-01T10:03:00Z", 0.5, 60),
    ]


@pytest.mark.parametrize(
    ("params", "loc", "fragment"),
    [
        (
            {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            ["query", "start"],
            "must be before end",
        ),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
            ["query", "end"],
            "31-day maximum",
        ),
        ({"start": "yesterday"}, ["query", "start"], "datetime"),
    ],
)
def test_samples_validation(
    client: TestClient, session: Session, params: dict[str, str], loc: list[str], fragment: str
) -> None:
    outpost = make_outpost(session)
    response = client.get(f"/api/v1/outposts/{outpost.outpost_id}/samples", params=params)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert fragment in error["msg"]


def test_bad_id_is_422_and_unknown_id_is_404(client: TestClient) -> None:
    for path in ("/api/v1/outposts/{}", "/api/v1/outposts/{}/incidents", "/api/v1/outposts/{}/samples"):
        bad = client.get(path.format("op-123"))
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["path", "outpost_id"]
        assert "'op-' followed by 17 hex digits" in bad.json()["detail"][0]["msg"]
        missing = client.get(path.format("op-0123456789abcdef9"))
        assert missing.status_code == 404
        assert "op-0123456789abcdef9" in missing.json()["detail"]


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    for path in (
        "/api/v1/outposts",
        "/api/v1/outposts/{outpost_id}",
        "/api/v1/outposts/{outpost_id}/incidents",
        "/api/v1/outposts/{outpost_id}/samples",
    ):
        assert "get" in spec["paths"][path]
    outpost = spec["components"]["schemas"]["OutpostOut"]
    assert {
        "outpost_id",
        "name",
        "region",
        "state",
        "state_since",
        "last_sample_at",
        "uptime",
        "unknown_seconds",
    } <= set(outpost["properties"])
    windows = spec["components"]["schemas"]["UptimeWindows"]["properties"]
    assert set(windows) == {"24h", "7d", "30d", "90d"}
