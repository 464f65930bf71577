"""Server-side paging (issue 20): the overview's region groups and page of rows, and the API's
cursor and total. A page holds what it shows, whatever the fleet size."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import add_poll_run, make_outpost
from tests.support.htmx import Rendering


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-outpost-id="([^"]+)"', html)


def _fleet(session: Session, now: dt.datetime, count: int = 25) -> dict[str, str]:
    """`count` Outposts named N00..; every 5th disconnected, all in us-west-2 but three in eu-west-1."""
    ids = {}
    for n in range(count):
        outpost = make_outpost(
            session,
            name=f"N{n:02d}",
            region="eu-west-1" if n in (1, 2, 3) else "us-west-2",
            state="DISCONNECTED" if n % 5 == 0 else "CONNECTED",
            state_since=now - dt.timedelta(hours=1),
            last_sample_at=now - dt.timedelta(minutes=1),
        )
        ids[outpost.name] = outpost.outpost_id
    add_poll_run(session, finished_at=now - dt.timedelta(seconds=30))
    return ids


def test_api_pages_with_a_cursor_and_a_total(client: TestClient, session: Session, now: dt.datetime) -> None:
    ids = _fleet(session, now)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/outposts", params=params).json()
        pages += 1
        assert body["total"] == 25 and body["limit"] == 10
        assert len(body["outposts"]) <= 10
        seen += [o["outpost_id"] for o in body["outposts"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    # Every Outpost exactly once, by name.
    assert seen == [ids[f"N{n:02d}"] for n in range(25)]


def test_api_cursor_respects_filters_and_rejects_garbage(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    _fleet(session, now)
    first = client.get("/api/v1/outposts", params={"state": "DISCONNECTED", "limit": 2}).json()
    assert first["total"] == 5 and [o["name"] for o in first["outposts"]] == ["N00", "N05"]
    rest = client.get(
        "/api/v1/outposts", params={"state": "DISCONNECTED", "limit": 10, "cursor": first["next_cursor"]}
    ).json()
    assert [o["name"] for o in rest["outposts"]] == ["N10", "N15", "N20"] and rest["next_cursor"] is None

    bad = client.get("/api/v1/outposts", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert "next_cursor" in bad.json()["detail"][0]["msg"]
    assert client.get("/api/v1/outposts", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/outposts", params={"limit": 1001}).status_code == 422


def test_overview_groups_regions_worst_first_with_counts(
    client: TestClient, session: Session, now: dt.datetime, htmx: Rendering
) -> None:
    _fleet(session, now)
    response = client.get("/", headers=htmx.headers)
    assert response.status_code == 200
    htmx.check(response)
    html = response.text
    groups = re.findall(r'<tr data-region="([^"]+)"', html)
    # us-west-2 has 5 disconnected (N00, N05...), eu-west-1 none: the worst region comes first.
    assert groups == ["us-west-2", "eu-west-1"]
    us = html[html.index('data-region="us-west-2"') :]
    assert 'data-count="DISCONNECTED">5<' in us[:1500]
    assert 'data-count="CONNECTED">17<' in us[:1500]
    # Filtered to one region, the groups give way to its rows.
    one = client.get("/", params={"region": "eu-west-1"}, headers=htmx.headers).text
    assert 'data-region="' not in one
    assert len(_row_ids(one)) == 3
    assert 'data-region="' not in client.get("/", params={"group": "none"}).text
    assert client.get("/", params={"group": "planet"}).status_code == 422


@pytest.mark.parametrize("settings_overrides", [{"overview_page_size": 10}])
def test_overview_shows_one_page_of_rows_worst_first(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    ids = _fleet(session, now)
    first = client.get("/").text
    rows = _row_ids(first)
    assert len(rows) == 10
    # Worst first: the 5 disconnected, then connected by name.
    assert rows[:5] == [ids[f"N{n:02d}"] for n in (0, 5, 10, 15, 20)]
    assert "Outposts 1 to 10 of 25" in first and 'rel="next"' in first and 'rel="prev"' not in first
    third = client.get("/", params={"page": 3}).text
    assert len(_row_ids(third)) == 5 and 'rel="next"' not in third and "Outposts 21 to 25 of 25" in third
    # The live refresh stays on its page.
    assert 'hx-get="/?page=3"' in third
    assert "No Outposts on page 9" in client.get("/", params={"page": 9}).text
    assert client.get("/", params={"page": "0"}).status_code == 422
