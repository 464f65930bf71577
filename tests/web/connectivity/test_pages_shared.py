"""The Outpost page's reads and `GET /api/v1/outposts`' answer are shared by every client while the data
version is unchanged (issue 20: at 1,000 Outposts a page of the API cost 60 ms and an Outpost page
20 ms of reads per request); a poll, an edit or a drill shows on the next request, and what is per
person (the "Poll now" form, the access panels) is never shared."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.services.connectivity import queries
from tests.factories import add_poll_run, make_cluster, make_outpost, start_drill_now
from tests.support.counting import count_calls, statements_on


@pytest.fixture
def uptime_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per uptime read (the costliest read of both the page and the API)."""
    return count_calls(monkeypatch, queries, "uptime_by_outpost")


def test_the_api_answer_is_shared_until_a_poll_lands(
    api_client_as: Any, session: Session, uptime_reads: list[int]
) -> None:
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    add_poll_run(session, finished_at=utcnow() - dt.timedelta(minutes=1))
    session.commit()
    first: TestClient = api_client_as("viewer")
    second: TestClient = api_client_as("viewer")
    answers = [c.get("/api/v1/outposts").json() for c in (first, second, first)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["outposts"][0]["state"] == "CONNECTED"
    assert len(uptime_reads) == 1
    # Another query is its own answer.
    assert first.get("/api/v1/outposts", params={"limit": 1}).json()["limit"] == 1
    assert len(uptime_reads) == 2

    outpost.state = "DISCONNECTED"
    add_poll_run(session, finished_at=utcnow())
    session.commit()
    answer = first.get("/api/v1/outposts").json()
    assert answer["outposts"][0]["state"] == "DISCONNECTED"
    assert answer["counts"]["DISCONNECTED"] == 1
    assert len(uptime_reads) == 3


def test_the_outpost_page_shares_its_reads_but_not_what_is_per_person(
    client_as: Any, session: Session, uptime_reads: list[int]
) -> None:
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    viewer: TestClient = client_as("viewer")
    responder: TestClient = client_as("responder")
    path = f"/outposts/{outpost.outpost_id}"
    seen_by_viewer = viewer.get(path).text
    seen_by_responder = responder.get(path).text
    assert "Poll now" not in seen_by_viewer
    assert "Poll now" in seen_by_responder
    assert 'id="uptime-table"' in seen_by_viewer and 'id="uptime-table"' in seen_by_responder
    assert len(uptime_reads) == 1
    # Each range is its own entry.
    assert viewer.get(path, params={"range": "7d"}).status_code == 200
    assert len(uptime_reads) == 2

    start_drill_now(session, outpost)
    session.commit()
    assert "service link drill" in viewer.get(path).text
    assert len(uptime_reads) == 3


def test_with_the_cache_off_every_request_reads(
    client_as: Any,
    api_client_as: Any,
    session: Session,
    settings: Any,
    uptime_reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "overview_cache_seconds", 0)
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    viewer: TestClient = client_as("viewer")
    api: TestClient = api_client_as("viewer")
    for _ in range(2):
        assert viewer.get(f"/outposts/{outpost.outpost_id}").status_code == 200
        assert api.get("/api/v1/outposts").status_code == 200
    assert len(uptime_reads) == 4


def test_a_cached_outpost_page_reads_its_clusters_with_the_outpost(
    client_as: Any, session: Session, app: Any
) -> None:
    """Each round trip counts on PostgreSQL: the Outpost and its clusters come in one query, not
    one for the Outpost and a lazy load for the clusters."""
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    for name in ("plant7-a", "plant7-b"):
        make_cluster(session, name).outpost_pk = outpost.id
    session.commit()
    first: TestClient = client_as("viewer")
    # Another sign-in: its page is built (the first one's would be reused whole), from the shared reads.
    viewer: TestClient = client_as("viewer")
    path = f"/outposts/{outpost.outpost_id}"
    assert first.get(path).status_code == 200  # fills the shared cache
    with statements_on(session.get_bind()) as statements:
        html = viewer.get(path).text
    assert 'href="/clusters/plant7-a?region=us-west-2"' in html and "plant7-b" in html
    from_clusters_alone = [
        s for s in statements if "FROM clusters" in s and "outposts" not in s.split("WHERE")[0]
    ]
    assert not from_clusters_alone, from_clusters_alone
