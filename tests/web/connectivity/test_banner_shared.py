"""The cut-off banner is on every page; its list is read once per change of what it is read from, not
once per page (issue 20: at 1,000 Outposts it was a third of a cached overview's time), and a poll,
an Outpost edit or a cluster change shows in it on the next page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.services.credentials import reach
from tests.factories import make_cluster, make_outpost


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time the banner's list is read from the database."""
    calls: list[int] = []
    real = reach.cut_off_outposts

    def counting(*args: Any, **kwargs: Any) -> list[reach.CutOff]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reach, "cut_off_outposts", counting)
    return calls


def test_the_banner_list_is_shared_until_the_fleet_changes(
    client_as: Any, session: Session, reads: list[int]
) -> None:
    since = utcnow() - dt.timedelta(minutes=7)
    outpost = make_outpost(session, name="Plant 7 Reno", state="DISCONNECTED", state_since=since)
    cluster = make_cluster(session, "plant7-local")
    cluster.outpost_pk = outpost.id
    session.commit()
    viewer: TestClient = client_as("viewer")
    for path in ("/clusters", "/account", "/clusters"):
        html = viewer.get(path).text
        assert "<title>(1) Disconnected · " in html, path
        assert 'href="/clusters/plant7-local?region=us-west-2"' in html, path
    assert len(reads) == 1

    cluster.name = "plant7-renamed"
    session.commit()
    html = viewer.get("/clusters").text
    assert 'href="/clusters/plant7-renamed?region=us-west-2"' in html
    assert len(reads) == 2

    outpost.state = "CONNECTED"
    session.commit()
    html = viewer.get("/clusters").text
    assert "Disconnected · " not in html and "plant7-renamed?region" not in html.split("<main")[0]
    assert len(reads) == 3


def test_with_the_cache_off_every_page_reads_the_banner(
    client_as: Any, session: Session, settings: Any, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "overview_cache_seconds", 0)
    make_outpost(session, name="Plant 7 Reno", state="DISCONNECTED", state_since=utcnow())
    session.commit()
    viewer: TestClient = client_as("viewer")
    for _ in range(3):
        assert "<title>(1) Disconnected · " in viewer.get("/clusters").text
    assert len(reads) == 3
