"""The Outpost page: chart per range (both renderings), incidents, uptime table, CSV export, errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import add_rollups, add_samples, make_outpost
from tests.support.htmx import Rendering


@pytest.mark.parametrize("range_key", ["6h", "24h", "7d", "30d", "90d"])
def test_chart_for_each_range(
    client: TestClient, session: Session, now: dt.datetime, htmx: Rendering, range_key: str
) -> None:
    outpost = make_outpost(session, name="Plant 7")
    add_samples(session, outpost, now - dt.timedelta(hours=3), [1.0] * 60 + [None] * 60 + [0.0] * 60)
    add_rollups(
        session, outpost, now.replace(minute=0) - dt.timedelta(days=100), [(3600.0, 3600.0)] * 24 * 99
    )

    response = client.get(f"/outposts/{outpost.outpost_id}?range={range_key}", headers=htmx.headers)

    assert response.status_code == 200
    htmx.check(response)
    html = response.text
    assert '<svg class="chart timeline"' in html
    assert f'data-range="{range_key}"' in html
    assert f'<a href="?range={range_key}" hx-get="?range={range_key}"' in html
    assert re.search(rf'href="\?range={range_key}"[^>]*\n?\s*aria-current="true"', html)
    if htmx.partial:
        assert "<html" not in html and "Incidents" not in html
    else:
        assert "Plant 7" in html and "Incidents" in html and 'id="uptime-table"' in html


def test_gap_is_drawn_unknown_not_connected(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session)
    # 6 h: 2 h connected, 2 h gap, 2 h connected (one column per minute).
    add_samples(session, outpost, now - dt.timedelta(hours=6), [1.0] * 120 + [None] * 120 + [1.0] * 120)
    html = client.get(f"/outposts/{outpost.outpost_id}?range=6h").text
    svg = html[html.index('<svg class="chart timeline"') : html.index("</svg>")]
    titles = re.findall(r"<title>([^<]+)</title>", svg)
    assert any("no data, 2 h unknown" in t for t in titles)
    gap = svg[svg.index("no data, 2 h unknown") :]
    first_rect = re.search(r'<rect class="(\w)"', gap)
    assert first_rect and first_rect.group(1) == "u"


def test_incidents_and_uptime_table(client: TestClient, session: Session, now: dt.datetime) -> None:
    outpost = make_outpost(session, state="DISCONNECTED", last_error="AccessDenied: User is not authorized")
    # The poller's service derives the incidents: one 45 min at 0.4 two days ago, one ongoing.
    add_samples(session, outpost, now - dt.timedelta(days=2), [0.4] * 45 + [1.0] * 5)
    add_samples(session, outpost, now - dt.timedelta(hours=2), [1.0] * 60 + [0.0] * 60)

    html = client.get(f"/outposts/{outpost.outpost_id}").text

    table = html[html.index('id="incidents-table"') :]
    rows = re.findall(r"<tr class=\"(ongoing)?\">(.*?)</tr>", table, re.S)
    assert len(rows) == 2
    assert rows[0][0] == "ongoing" and "1 h so far" in rows[0][1]
    assert rows[1][0] == "" and "45 min" in rows[1][1] and "0.40" in rows[1][1]
    uptime = html[html.index('id="uptime-table"') :]
    assert '<tr data-window="24h">' in uptime and "50.000%" in uptime
    assert "22 h" in uptime  # unknown part of the 24 h window
    assert "AccessDenied: User is not authorized" in html
    assert "account that owns the Outpost" in html


def test_unknown_outpost_is_404_and_bad_id_422(client: TestClient) -> None:
    missing = client.get("/outposts/op-0123456789abcdef0")
    assert missing.status_code == 404
    assert "No Outpost op-0123456789abcdef0 in the fleet" in missing.text
    bad = client.get("/outposts/not-an-outpost")
    assert bad.status_code == 422
    assert "must be &#39;op-&#39; followed by 17 hex digits" in bad.text


def test_bad_range_is_422(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    response = client.get(f"/outposts/{outpost.outpost_id}?range=1y")
    assert response.status_code == 422
    assert "range must be one of 6h, 24h, 7d, 30d, 90d" in response.text


def test_csv_export_streams_samples(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    start = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)
    values: list[float | None] = [1.0] * 1500 + [0.5, None, 0.0]
    add_samples(session, outpost, start, values)

    response = client.get(
        f"/outposts/{outpost.outpost_id}/samples.csv",
        params={"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert (
        f'filename="{outpost.outpost_id}_20261101T0000_20261102T0000.csv"'
        in response.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["outpost_id", "timestamp", "connected_status", "period_seconds"]
    assert len(rows) == 1 + 1440  # only the first day, across several streamed chunks
    assert rows[1] == [outpost.outpost_id, "2026-11-01T00:00:00Z", "1.0", "60"]
    assert rows[-1][1] == "2026-11-01T23:59:00Z"
    tail = client.get(
        f"/outposts/{outpost.outpost_id}/samples.csv",
        params={"start": "2026-11-02T00:59:00Z", "end": "2026-11-02T02:00:00Z"},
    )
    assert [r[1:3] for r in csv.reader(io.StringIO(tail.text))][1:] == [
        ["2026-11-02T00:59:00Z", "1.0"],
        ["2026-11-02T01:00:00Z", "0.5"],
        ["2026-11-02T01:02:00Z", "0.0"],
    ]


def test_csv_bad_range_is_422_with_reason(client: TestClient, session: Session) -> None:
    outpost = make_outpost(session)
    response = client.get(
        f"/outposts/{outpost.outpost_id}/samples.csv",
        params={"start": "2026-11-05T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert "must be before end" in response.text


def test_uptime_table_says_when_a_window_is_longer_than_the_data(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    # One day of history: 7 d, 30 d and 90 d hold the same data as 24 h (issue 19).
    outpost = make_outpost(session)
    add_samples(session, outpost, now - dt.timedelta(hours=24), [1.0] * 1380 + [0.0] * 60)

    html = client.get(f"/outposts/{outpost.outpost_id}").text

    table = html[html.index('id="uptime-table"') : html.index("</table>", html.index('id="uptime-table"'))]
    rows = dict(re.findall(r'<tr data-window="(\w+)">(.*?)</tr>', table, re.S))
    assert "95.8" in rows["24h"] and "of data" not in rows["24h"]
    since = f"since {(now - dt.timedelta(hours=24)):%b} {(now - dt.timedelta(hours=24)).day}, 1 d of data"
    for window in ("7d", "30d", "90d"):
        assert since in rows[window], window
        # Neither the 24 h figure again nor the days before the history as "unknown".
        assert "95.8" not in rows[window] and " 6 d" not in rows[window] and "29 d" not in rows[window]


def test_chart_tooltips_give_long_unknown_stretches_in_days(
    client: TestClient, session: Session, now: dt.datetime
) -> None:
    outpost = make_outpost(session)
    add_samples(session, outpost, now - dt.timedelta(hours=24), [1.0] * 1440)
    html = client.get(f"/outposts/{outpost.outpost_id}?range=90d").text
    svg = html[html.index('<svg class="chart timeline"') : html.index("</svg>")]
    titles = re.findall(r"<title>([^<]+)</title>", svg)
    assert re.search(r"no data, 8\d d( \d+ h)? unknown", titles[0]), titles[0]
    assert not any(re.search(r"\d{4,} min", t) for t in titles), titles
