"""The overview and the Outpost page are built once per sign-in and URL while nothing changes
(`page_cache.for_sign_in`, issue 20: a wall display's tabs and HTMX refreshes re-rendered the whole
page on every request). The sign-in itself is still checked on every request: an ended session, a
disabled account or a changed role never gets a page made before."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.models.account import User, WebSession
from app.web.connectivity import outposts, overview
from app.web.security import SESSION_COOKIE, csrf_token_for_session
from tests.factories import make_cluster, make_outpost
from tests.support.counting import count_calls


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """One entry per build of each page (what a reused answer skips)."""
    return {
        "overview": count_calls(monkeypatch, overview, "_index"),
        "outpost": count_calls(monkeypatch, outposts, "_detail"),
    }


def _csrf(client: TestClient) -> str:
    return csrf_token_for_session(client.cookies[SESSION_COOKIE])


def test_a_page_is_built_once_per_sign_in_and_url_until_something_is_written(
    client_as: Any, session: Session, builds: dict[str, list[int]]
) -> None:
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    viewer: TestClient = client_as("viewer", "wall-display")
    pages = [viewer.get("/") for _ in range(3)]
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert pages[0].text == pages[1].text == pages[2].text
    assert len(builds["overview"]) == 1
    # The security headers are the middleware's, on every answer, reused or not.
    assert pages[2].headers["content-security-policy"] == pages[0].headers["content-security-policy"]
    assert int(pages[2].headers["content-length"]) == len(pages[2].content)

    # Another query, and the HTMX refresh of the same URL (a fragment), are answers of their own.
    assert viewer.get("/", params={"sort": "name"}).status_code == 200
    fragment = viewer.get("/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert len(builds["overview"]) == 3

    # Another person's page is built for them: their name and CSRF token, never the first one's.
    other: TestClient = client_as("viewer", "night-shift")
    theirs = other.get("/").text
    assert len(builds["overview"]) == 4
    assert "night-shift" in theirs and _csrf(other) in theirs
    assert "wall-display" not in theirs and _csrf(viewer) not in theirs
    assert "wall-display" in pages[0].text and _csrf(viewer) in pages[0].text

    # A write committed in this process (here: a cluster added) is on the next answer.
    make_cluster(session, "plant7-a").outpost_pk = outpost.id
    session.commit()
    assert viewer.get("/").status_code == 200
    assert len(builds["overview"]) == 5

    path = f"/outposts/{outpost.outpost_id}"
    first = viewer.get(path)
    assert "plant7-a" in first.text
    assert viewer.get(path).text == first.text
    assert len(builds["outpost"]) == 1
    assert viewer.get(path, params={"range": "7d"}).status_code == 200
    assert len(builds["outpost"]) == 2


def test_an_ended_session_or_disabled_account_never_gets_a_page_made_before(
    client_as: Any, session: Session, builds: dict[str, list[int]]
) -> None:
    """Written the way another process (the CLI, a second worker) would: with plain statements
    this process's cache hears nothing about. The sign-in check on each request refuses anyway."""
    make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    ended: TestClient = client_as("viewer", "ended")
    disabled: TestClient = client_as("viewer", "disabled")
    for client in (ended, disabled):
        assert client.get("/").status_code == 200
    assert len(builds["overview"]) == 2

    ended_id = select(User.id).where(User.username == "ended").scalar_subquery()
    session.execute(delete(WebSession).where(WebSession.user_id == ended_id))
    session.execute(update(User).where(User.username == "disabled").values(disabled=True))
    session.commit()
    for client in (ended, disabled):
        refused = client.get("/", follow_redirects=False)
        assert refused.status_code in (302, 303), refused.status_code
        assert refused.headers["location"].startswith("/login")
    assert len(builds["overview"]) == 2


def test_a_changed_role_gets_its_own_page(client_as: Any, session: Session) -> None:
    admin: TestClient = client_as("admin", "lead")
    assert 'href="/users"' in admin.get("/").text
    session.execute(update(User).where(User.username == "lead").values(role="viewer"))
    session.commit()
    assert 'href="/users"' not in admin.get("/").text


def test_only_plain_successes_are_kept(
    client_as: Any, session: Session, builds: dict[str, list[int]]
) -> None:
    viewer: TestClient = client_as("viewer")
    for _ in range(2):
        assert viewer.get("/", params={"page": "x"}).status_code == 422
        assert viewer.get("/outposts/op-0123456789abcdef0").status_code == 404
    assert len(builds["overview"]) == 2
    assert len(builds["outpost"]) == 2


def test_with_the_cache_off_every_request_builds(
    client_as: Any, settings: Any, builds: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "overview_cache_seconds", 0)
    viewer: TestClient = client_as("viewer")
    for _ in range(2):
        assert viewer.get("/").status_code == 200
    assert len(builds["overview"]) == 2
