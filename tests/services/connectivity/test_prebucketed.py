"""Pre-bucketed reads (issue 20): the overview's strip read from half-hour rollups and the 30- and
90-day charts read from daily rollups equal the same buckets computed from the raw samples, over
random histories written in random late, repeated and corrected batches, with gaps, degraded values,
midnights, bucket boundaries and a still-open current bucket; retention and the migration's
backfill keep the half-hours equal to the samples too."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import migrate
from app.db import create_db_engine, make_session_factory
from app.integrations.cloudwatch import Datapoint
from app.models import ConnectedSample, HalfHourRollup, Outpost
from app.services.connectivity import queries, status
from app.services.connectivity.retention import apply_retention
from tests.conftest import DatabaseServer
from tests.factories import NOW, make_outpost, outpost_id, points

Raw = tuple[float, float, float | None]


def _raw(session: Session, pk: int) -> list[tuple[dt.datetime, float, int]]:
    return list(
        session.execute(
            select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds).where(
                ConnectedSample.outpost_pk == pk
            )
        ).all()
    )


def _oracle(
    samples: Sequence[tuple[dt.datetime, float, int]],
    origin: dt.datetime,
    count: int,
    seconds: int,
    now: dt.datetime,
) -> list[queries.Bucket]:
    """Buckets computed in Python from the raw samples: a sample counts in the bucket its start
    falls in (as the SQL grouping of raw samples always did)."""
    sums: dict[int, Raw] = {}
    for ts, value, period in samples:
        index = int((ts - origin).total_seconds()) // seconds
        if not 0 <= index < count:
            continue
        known, connected, low = sums.get(index, (0.0, 0.0, None))
        sums[index] = (known + period, connected + value * period, value if low is None else min(low, value))
    buckets = []
    for index in range(count):
        start = origin + dt.timedelta(seconds=index * seconds)
        end = min(start + dt.timedelta(seconds=seconds), now)
        if end <= start:
            break
        known, connected, low = sums.get(index, (0.0, 0.0, None))
        span = (end - start).total_seconds()
        buckets.append(queries.Bucket(start, end, min(known, span), min(connected, span), low))
    return buckets


def _write_randomly(session: Session, rng: random.Random, pk: int, points: list[Datapoint]) -> None:
    """Write `points` as the poller may: shuffled batches (late data), some written twice, and some
    first written with another value and corrected later."""
    order = points[:]
    rng.shuffle(order)
    wrong = [Datapoint(p.ts, 1.0 - p.value if p.value in (0.0, 1.0) else 0.0, p.period) for p in order[:40]]
    status.record_samples(session, {pk: wrong})
    while order:
        size = rng.randrange(1, 400)
        batch, order = order[:size], order[size:]
        status.record_samples(session, {pk: batch})
        if rng.random() < 0.2:
            status.record_samples(session, {pk: batch})
    session.flush()


def _history(rng: random.Random, start: dt.datetime, minutes: int, period: int) -> list[Datapoint]:
    """Samples on `period` boundaries with gaps (some long), outages and degraded values."""
    found = []
    gap_until = -1
    for i in range(0, minutes * 60, period):
        if i < gap_until:
            continue
        roll = rng.random()
        if roll < 0.01:
            gap_until = i + rng.choice((1800, 3600, 5 * 3600))
            continue
        if roll < 0.1:
            continue
        value = 0.0 if roll < 0.14 else round(rng.random(), 3) if roll < 0.2 else 1.0
        found.append(Datapoint(start + dt.timedelta(seconds=i), value, period))
    return found


def _assert_same(got: Sequence[queries.Bucket], want: Sequence[queries.Bucket]) -> None:
    assert [(b.start, b.end) for b in got] == [(b.start, b.end) for b in want]
    for a, b in zip(got, want, strict=True):
        assert a.known_seconds == pytest.approx(b.known_seconds, abs=1e-6), a.start
        assert a.connected_seconds == pytest.approx(b.connected_seconds, abs=1e-6), a.start
        assert (a.min_value is None, a.state) == (b.min_value is None, b.state), a.start
        if a.min_value is not None and b.min_value is not None:
            assert a.min_value == pytest.approx(b.min_value)


def _strip_buckets(
    segments: Sequence[queries.StripSegment],
) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
    return [(s.state, s.start, s.end, s.width) for s in segments]


# A `now` on a half-hour boundary, just after one, just before one, at midnight and mid-bucket.
NOWS = [
    NOW,
    NOW + dt.timedelta(seconds=1),
    NOW + dt.timedelta(minutes=29, seconds=59),
    NOW.replace(hour=0),
    NOW + dt.timedelta(minutes=47, seconds=13),
]


@pytest.mark.parametrize("seed", range(5))
def test_strip_from_half_hour_rollups_equals_the_samples(session: Session, seed: int) -> None:
    rng = random.Random(seed)
    now = NOWS[seed]
    outposts = [make_outpost(session) for _ in range(3)]
    for index, outpost in enumerate(outposts):
        # 27 hours up to a little past `now` (a sample after `now` in the open bucket counts, as
        # it did from raw samples), starting off a bucket boundary; one Outpost has 5-minute data.
        period = 300 if index == 2 else 60
        start = now - dt.timedelta(hours=27, minutes=rng.randrange(0, 60))
        start = start.replace(second=0, microsecond=0)
        start -= dt.timedelta(minutes=start.minute % (period // 60))
        _write_randomly(session, rng, outpost.id, _history(rng, start, 27 * 60 + 20, period))
    pks = [o.id for o in outposts]

    strips = queries.status_strips(session, pks, now)

    end = queries._ceil(now, queries.STRIP_BUCKET_SECONDS)
    origin = end - dt.timedelta(seconds=queries.STRIP_BUCKETS * queries.STRIP_BUCKET_SECONDS)
    for pk in pks:
        want = _oracle(_raw(session, pk), origin, queries.STRIP_BUCKETS, queries.STRIP_BUCKET_SECONDS, now)
        assert _strip_buckets(strips[pk]) == _strip_buckets(queries.merge_segments(want))
        for got_segment, want_segment in zip(strips[pk], queries.merge_segments(want), strict=True):
            assert got_segment.known_seconds == pytest.approx(want_segment.known_seconds)
            assert got_segment.connected_seconds == pytest.approx(want_segment.connected_seconds)
    # Each half-hour row is exactly its samples' sums (the store, not only what the strip shows).
    for pk in pks:
        rows = {
            start: (known, connected, low)
            for start, known, connected, low in session.execute(
                select(
                    HalfHourRollup.start,
                    HalfHourRollup.known_seconds,
                    HalfHourRollup.connected_seconds,
                    HalfHourRollup.min_value,
                ).where(HalfHourRollup.outpost_pk == pk)
            )
        }
        first = min(rows)
        want_rows = _oracle(_raw(session, pk), first, len(rows) + 200, 1800, first + dt.timedelta(days=3))
        expected = {b.start: b for b in want_rows if b.known_seconds}
        assert set(rows) == set(expected)
        for start, (known, connected, low) in rows.items():
            assert (known, connected, low) == pytest.approx(
                (expected[start].known_seconds, expected[start].connected_seconds, expected[start].min_value)
            )


def test_the_strip_reads_one_query_of_half_hour_rows(session: Session) -> None:
    outposts = [make_outpost(session) for _ in range(4)]
    for outpost in outposts:
        status.record_samples(session, {outpost.id: _history(random.Random(outpost.id), NOW, 60, 60)})
    statements: list[str] = []
    bind = session.connection()

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(bind, "before_cursor_execute", seen)
    try:
        queries.status_strips(session, [o.id for o in outposts], NOW + dt.timedelta(minutes=50))
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert "halfhour_rollups" in statements[0] and "connected_samples" not in statements[0]


@pytest.mark.parametrize(("seed", "range_key"), [(0, "30d"), (1, "90d"), (2, "90d"), (3, "30d")])
def test_day_charts_from_daily_rollups_equal_the_samples(session: Session, seed: int, range_key: str) -> None:
    rng = random.Random(seed)
    # Midnight exactly, just after it, mid-day, and just before the next midnight.
    now = [NOW.replace(hour=0), NOW.replace(hour=0, second=1), NOW, NOW.replace(hour=23, minute=59)][seed]
    outpost = make_outpost(session)
    # About 12 days of 5-minute samples ending with a day of minute samples, with gaps of hours
    # and days, across midnights; then a few samples just after `now` in the open day.
    old_start = (now - dt.timedelta(days=12, minutes=rng.randrange(0, 1440))).replace(second=0, microsecond=0)
    old_start -= dt.timedelta(minutes=old_start.minute % 5)
    recent = (now - dt.timedelta(days=1)).replace(second=0, microsecond=0)
    old = [p for p in _history(rng, old_start, 11 * 1440, 300) if p.ts < recent - dt.timedelta(minutes=5)]
    # Two days without data hold at least one whole UTC day: its column must stay unknown.
    old = [p for p in old if not (recent - dt.timedelta(days=7) <= p.ts < recent - dt.timedelta(days=5))]
    _write_randomly(session, rng, outpost.id, old + _history(rng, recent, 1440 + 10, 60))

    chart = queries.timeline(session, outpost, range_key, now)

    length, seconds = queries.RANGES[range_key]
    assert chart.source == "daily" and seconds == 86400
    end = queries._ceil(now, seconds)
    count = int(length.total_seconds() // seconds)
    origin = end - dt.timedelta(seconds=count * seconds)
    _assert_same(chart.buckets, _oracle(_raw(session, outpost.id), origin, count, seconds, now))
    assert len(chart.buckets) == count
    assert any(b.state == "unknown" for b in chart.buckets[-8:])  # the missing day stays unknown


def test_retention_prunes_half_hours_with_the_raw_samples(session: Session) -> None:
    outpost = make_outpost(session)
    status.record_samples(session, {outpost.id: points(NOW - dt.timedelta(days=3), [1.0] * (3 * 1440))})
    cutoff = NOW - dt.timedelta(days=1, minutes=10)
    apply_retention(session, NOW + dt.timedelta(minutes=-10), raw_days=1, rollup_days=30, poll_run_days=30)
    oldest = session.scalar(select(func.min(HalfHourRollup.start)))
    assert oldest == cutoff.replace(minute=30)
    # The strip of the last 24 hours still equals its samples.
    strips = queries.status_strips(session, [outpost.id], NOW)
    end = queries._ceil(NOW, 1800)
    origin = end - dt.timedelta(hours=24)
    want = queries.merge_segments(_oracle(_raw(session, outpost.id), origin, 48, 1800, NOW))
    assert _strip_buckets(strips[outpost.id]) == _strip_buckets(want)


def test_the_migration_backfills_half_hours_from_the_samples(database_server: DatabaseServer) -> None:
    url = database_server.create("halfhours")
    migrate.upgrade(url, "0025")
    engine = create_db_engine(url)
    rng = random.Random(11)
    start = dt.datetime(2026, 11, 29, 22, 17, tzinfo=dt.UTC)  # crosses midnight, off a boundary
    history = _history(rng, start, 5 * 60, 60)
    try:
        with make_session_factory(engine)() as session:
            outpost = Outpost(outpost_id=outpost_id(1), name="Backfilled", region="us-west-2")
            session.add(outpost)
            session.flush()
            session.add_all(
                ConnectedSample(outpost_pk=outpost.id, ts=p.ts, value=p.value, period_seconds=p.period)
                for p in history
            )
            session.commit()
            pk = outpost.id
        migrate.upgrade(url)
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(
                    HalfHourRollup.start,
                    HalfHourRollup.known_seconds,
                    HalfHourRollup.connected_seconds,
                    HalfHourRollup.min_value,
                    HalfHourRollup.samples,
                ).where(HalfHourRollup.outpost_pk == pk)
            ).all()
            origin = dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.UTC)
            want = [
                b
                for b in _oracle(_raw(session, pk), origin, 12, 1800, origin + dt.timedelta(hours=6))
                if b.known_seconds
            ]
            assert [r[0] for r in sorted(rows)] == [b.start for b in want]
            for row, bucket in zip(sorted(rows), want, strict=True):
                assert row[1:4] == pytest.approx(
                    (bucket.known_seconds, bucket.connected_seconds, bucket.min_value)
                )
            assert sum(r[4] for r in rows) == len(history)
    finally:
        engine.dispose()
