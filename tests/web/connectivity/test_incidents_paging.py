"""The incidents API pages with a cursor and says when more exist, instead of dropping the oldest."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import add_incident, make_outpost


def test_many_short_dips_are_all_reachable_by_cursor(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    outpost = make_outpost(session)
    starts = [now - dt.timedelta(days=3) + dt.timedelta(minutes=20 * i) for i in range(211)]
    for start in starts:
        add_incident(session, outpost, start, start + dt.timedelta(minutes=2), worst_value=0.0)
    url = f"/api/v1/outposts/{outpost.outpost_id}/incidents"

    first = client.get(url).json()
    assert len(first["incidents"]) == 200 and first["has_more"] is True
    second = client.get(url, params={"cursor": first["next_cursor"]}).json()
    assert len(second["incidents"]) == 11
    assert (second["has_more"], second["next_cursor"]) == (False, None)
    seen = [dt.datetime.fromisoformat(i["started_at"]) for i in first["incidents"] + second["incidents"]]
    assert seen == sorted(starts, reverse=True)  # every incident once, newest first

    # The cursor survives being pasted into a URL by hand (no "+" to turn into a space).
    assert "+" not in first["next_cursor"]
    by_hand = client.get(f"{url}?limit=5&cursor={first['next_cursor']}").json()
    assert by_hand["incidents"] == second["incidents"][:5] and by_hand["has_more"] is True


def test_a_page_that_holds_everything_says_so(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session)
    add_incident(session, outpost, now - dt.timedelta(hours=2), now - dt.timedelta(hours=1))
    body = client.get(f"/api/v1/outposts/{outpost.outpost_id}/incidents?limit=1").json()
    assert len(body["incidents"]) == 1 and (body["has_more"], body["next_cursor"]) == (False, None)


def test_a_bad_cursor_says_what_is_wrong(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    response = client.get(f"/api/v1/outposts/{outpost.outpost_id}/incidents?cursor=yesterday")
    assert response.status_code == 422
    assert "cursor" in response.text
