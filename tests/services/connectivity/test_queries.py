"""Status strips and timelines from seeded samples and rollups, and the fixed query count of the
overview's bulk reads (uptime itself is app.services.connectivity.status's, tested in test_status.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.services.connectivity import queries
from tests.factories import NOW, add_rollups, add_samples, make_outpost
from tests.support.counting import statements_on

HOUR = dt.timedelta(hours=1)


def test_bulk_uptime_and_strips_use_a_fixed_number_of_queries(session: Session) -> None:
    small = [make_outpost(session)]
    large = [make_outpost(session) for _ in range(25)]
    for outpost in small + large:
        add_samples(session, outpost, NOW - dt.timedelta(hours=2), [1.0] * 120)

    def count_queries(pks: list[int]) -> int:
        statements: list[str] = []

        def record(*args: object) -> None:
            statements.append(str(args[2]))

        bind = session.get_bind()
        event.listen(bind, "before_cursor_execute", record)
        try:
            queries.uptime_by_outpost(session, pks, NOW)
            queries.status_strips(session, pks, NOW)
        finally:
            event.remove(bind, "before_cursor_execute", record)
        return len(statements)

    # No poll stored their uptime: the stored rows are asked first (one statement), then daily
    # rollups for whole days, one index range of hourly ones per distinct range beside them, the
    # partial hours, drills and the strips (test_stored_uptime.py has the poll's case: one read).
    assert count_queries([o.id for o in small]) == count_queries([o.id for o in large]) <= 14


def test_strip_buckets_merge_runs_and_classify(session: Session) -> None:
    outpost = make_outpost(session)
    now = NOW  # 12:00, on a bucket boundary: 48 half-hours from 12:00 yesterday, last one empty
    start = now - dt.timedelta(hours=24)
    # 20 h connected, then 1 h gap, 30 min with one 0, 30 min degraded, 2 h connected.
    values: list[float | None] = [1.0] * 1200 + [None] * 60 + [1.0] * 29 + [0.0] + [0.8] * 30 + [1.0] * 120
    add_samples(session, outpost, start, values)

    strip = queries.status_strips(session, [outpost.id], now)[outpost.id]

    assert [(s.state, s.width) for s in strip] == [
        ("connected", 40),
        ("unknown", 2),
        ("disconnected", 1),
        ("degraded", 1),
        ("connected", 4),
    ]
    assert sum(s.width for s in strip) == queries.STRIP_BUCKETS
    assert strip[1].title.startswith("Nov 30 08:00 to 09:00 UTC: unknown")  # dated (issue 19)
    assert "60 min unknown" in strip[1].title


def test_bucket_state_rules() -> None:
    start = NOW
    end = NOW + dt.timedelta(minutes=30)
    assert queries.Bucket(start, end, 1800, 1800, 1.0).state == "connected"
    assert queries.Bucket(start, end, 600, 600, 1.0).state == "unknown"  # mostly a gap
    assert queries.Bucket(start, end, 60, 0, 0.0).state == "disconnected"  # a blip is never hidden
    assert queries.Bucket(start, end, 1800, 1700, 0.5).state == "degraded"
    assert queries.Bucket(start, end).state == "unknown"


@pytest.mark.parametrize(
    ("range_key", "count", "source"),
    [
        ("6h", 360, "samples"),
        ("24h", 288, "samples"),
        ("7d", 168, "rollups"),
        ("30d", 30, "daily"),
        ("90d", 90, "daily"),
    ],
)
def test_timeline_ranges(session: Session, range_key: str, count: int, source: str) -> None:
    outpost = make_outpost(session)
    add_samples(session, outpost, NOW - 6 * HOUR, [1.0] * 360)
    add_rollups(session, outpost, NOW - 24 * 90 * HOUR, [(3600.0, 3600.0)] * (24 * 90))

    chart = queries.timeline(session, outpost, range_key, NOW + dt.timedelta(seconds=1))

    assert chart.source == source
    assert len(chart.buckets) == count
    if source == "daily":
        # One row per day-wide column (the daily rollups kept beside the hourly ones).
        assert all(b.seconds == 86400 for b in chart.buckets[:-1])
        assert all(b.state == "connected" for b in chart.buckets[1:])
        return
    last_six_hours = [b for b in chart.buckets if b.start >= NOW - 6 * HOUR and b.end <= NOW]
    assert last_six_hours and all(b.state == "connected" for b in last_six_hours)


def test_timeline_gap_is_unknown(session: Session) -> None:
    outpost = make_outpost(session)
    add_samples(session, outpost, NOW - 6 * HOUR, [1.0] * 120 + [None] * 120 + [1.0] * 120)
    chart = queries.timeline(session, outpost, "6h", NOW)
    states = [b.state for b in chart.buckets]
    assert states[:120] == ["connected"] * 120
    assert states[120:240] == ["unknown"] * 120
    assert states[240:360] == ["connected"] * 120
    assert all(b.connected_seconds == 0 for b in chart.buckets[120:240])


def test_site_lane_and_verdict_times_carry_their_dates() -> None:
    """A site-view stretch over several days, and a state since yesterday, say which days (issue 19)."""
    from app.services.connectivity.site import LaneSegment, Verdict

    start, end = (
        dt.datetime(2026, 9, 3, 18, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 2, 14, 22, 29, tzinfo=dt.UTC),
    )
    lane = LaneSegment("GAP", start, end, 100.0, "pending")
    assert lane.title.startswith("Sep 3 18:00:00 to Dec 2 14:22:29 UTC: gap")
    same_day = LaneSegment("CONNECTED", end - dt.timedelta(seconds=30), end, 1.0, "agrees")
    assert same_day.title.startswith("Dec 2 14:21:59 to 14:22:29 UTC: connected")
    verdict = Verdict("CONNECTED", start, "CloudWatch", "here", "CONNECTED", None, (), "")
    assert verdict.text == "Connected to the Region since Sep 3 18:00:00 UTC"


def test_data_since_is_each_outposts_first_known_hour_read_by_seek(session: Session) -> None:
    """The start of history: the first hourly rollup with known time (an hour with no datapoint
    does not count), read per Outpost by an index seek rather than a grouped scan of its history."""

    from app.models import HourlyRollup

    old, new = make_outpost(session, name="old"), make_outpost(session, name="new")
    empty = make_outpost(session, name="empty")
    start = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    for pk, first in ((old.id, start), (new.id, start + dt.timedelta(days=300))):
        hours = [(first - dt.timedelta(hours=1), 0.0)] + [
            (first + dt.timedelta(hours=h), 3600.0) for h in range(48)
        ]
        for hour, known in hours:
            session.add(
                HourlyRollup(
                    outpost_pk=pk,
                    hour=hour,
                    connected_seconds=known,
                    known_seconds=known,
                    min_value=1.0,
                    avg_value=1.0,
                    samples=int(known // 60),
                )
            )
    session.flush()
    with statements_on(session.connection()) as statements:
        found = queries.data_since(session, [old.id, new.id, empty.id])
    assert found == {old.id: start, new.id: start + dt.timedelta(days=300)}
    assert len(statements) == 1 and "GROUP BY" not in statements[0].upper()
