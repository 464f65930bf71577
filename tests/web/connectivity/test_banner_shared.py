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
from app.web import access
from app.web.templating import CUT_OFF_BANNER_LIMIT
from tests.factories import make_cluster, make_outpost
from tests.support.counting import count_calls


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time the banner's list is read from the database."""
    return count_calls(monkeypatch, reach, "cut_off_outposts")


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


def test_the_banner_is_rendered_once_for_everyone_until_the_fleet_changes(
    client_as: Any, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only its list: its markup too (hundreds of Outposts in a bad hour, on every page)."""
    renders: list[int] = []
    real = access.title_prefix

    def rendered(found: list[Any]) -> str:
        if found:  # the sign-in form's empty banner is not shared (nobody is signed in)
            renders.append(len(found))
        return real(found)

    monkeypatch.setattr(access, "title_prefix", rendered)
    outpost = make_outpost(session, name="Plant 7 Reno", state="DISCONNECTED", state_since=utcnow())
    session.commit()
    viewer: TestClient = client_as("viewer")
    responder: TestClient = client_as("responder")
    for client, path in ((viewer, "/clusters"), (responder, "/account"), (viewer, "/account")):
        html = client.get(path).text
        assert "<title>(1) Disconnected · " in html, path
        assert 'data-cut-off="' + outpost.outpost_id + '"' in html, path
    assert len(renders) == 1
    # The overview's HTMX refresh carries its own out-of-band copy, also made once.
    for _ in range(2):
        fragment = viewer.get("/", params={"sort": "name"}, headers={"HX-Request": "true"}).text
        assert 'id="cutoff-banner" hx-swap-oob="true"' in fragment
    assert len(renders) == 2

    outpost.state = "CONNECTED"
    session.commit()
    html = viewer.get("/clusters").text
    assert "Disconnected · " not in html and "data-cut-off" not in html


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


def test_a_bad_hour_across_the_fleet_lists_the_worst_and_counts_the_rest(
    client_as: Any, session: Session
) -> None:
    """At 5,000 Outposts a bad hour is hundreds of them: the banner on every page lists the first
    few, worst first, and counts the rest with a link to them on the overview."""
    since = utcnow() - dt.timedelta(minutes=3)
    for index in range(CUT_OFF_BANNER_LIMIT + 2):
        make_outpost(session, name=f"Down {index:02d}", state="DISCONNECTED", state_since=since)
    for index in range(3):
        make_outpost(session, name=f"Slow {index:02d}", state="DEGRADED", state_since=since)
    session.commit()
    html = client_as("viewer").get("/clusters").text
    banner = html.split('id="cutoff-banner"')[1].split("</ul>")[0]
    assert f"{CUT_OFF_BANNER_LIMIT + 5} Outposts cut off or degraded now" in banner
    assert banner.count("data-cut-off=") == CUT_OFF_BANNER_LIMIT
    assert "Down 00" in banner and "Slow 00" not in banner
    assert '<a href="/?state=DISCONNECTED">5 more</a>' in banner
    assert "(2 disconnected, 3 degraded) on the overview" in banner
    # The tab title still counts every one.
    assert f"<title>({CUT_OFF_BANNER_LIMIT + 2}) Disconnected, (3) Degraded · " in html
