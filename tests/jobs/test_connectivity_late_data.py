"""Datapoints CloudWatch receives late into an hours-old hole are stored by a later poll's hole
re-check, within its request budget; cycles between re-checks cost ceil(N/500) requests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import connectivity
from app.models.connectivity import ConnectedSample
from app.services.connectivity import status
from tests.conftest import make_settings
from tests.factories import make_outposts, minutes, seed

HOURS = 8
HOLE_AT = 6 * 60  # the hole starts 6 h before the first poll
HOLE = 30


def _floor(ts: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(ts.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def _stored(session: Session, pk: int) -> dict[dt.datetime, float]:
    session.expire_all()
    rows = session.execute(
        select(ConnectedSample.ts, ConnectedSample.value).where(ConnectedSample.outpost_pk == pk)
    )
    return {ts: value for ts, value in rows}


def test_late_datapoints_into_an_old_hole_are_stored_by_a_later_poll(
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    settings = make_settings(
        database_url,
        aws_endpoint_url=aws_endpoint,
        poll_trailing_window_minutes=5,
        poll_initial_backfill_hours=HOURS,
        poll_hole_recheck_minutes=30,
        poll_hole_requests=2,
        aws_max_attempts=2,
        aws_read_timeout_seconds=120,
    )
    (outpost,) = make_outposts(session, 1, start=1501)
    session.commit()
    first_poll = _floor(now, 1800) + dt.timedelta(seconds=30)  # early in a re-check slot
    start = first_poll.replace(second=0) - dt.timedelta(minutes=HOURS * 60)
    span = HOURS * 60 + 40  # data runs on past the later polls
    values: list[float | None] = [0.0 if i % 97 < 3 else 1.0 for i in range(span)]
    hole = values[HOLE_AT : HOLE_AT + HOLE]
    published = values[:HOLE_AT] + [None] * HOLE + values[HOLE_AT + HOLE :]
    seed(aws_endpoint, minutes(start, published, outpost.outpost_id))

    connectivity.poll_connectivity(settings, session_factory, now=first_poll)
    hole_start = start + dt.timedelta(minutes=HOLE_AT)
    stored = _stored(session, outpost.id)
    assert hole_start not in stored and hole_start - dt.timedelta(minutes=1) in stored

    # The Outpost had buffered those minutes; CloudWatch receives them late.
    seed(aws_endpoint, minutes(hole_start, hole, outpost.outpost_id))

    # Same re-check slot: the steady state costs ceil(N/500) = 1 request and the hole stays.
    (steady,) = connectivity.poll_connectivity(
        settings, session_factory, now=first_poll + dt.timedelta(minutes=2)
    )
    assert (steady.requests, steady.hole_requests) == (1, 0)
    assert hole_start not in _stored(session, outpost.id)

    # The next slot's first cycle re-asks for the hole, within the budget.
    later = first_poll + dt.timedelta(minutes=30)
    (recheck,) = connectivity.poll_connectivity(settings, session_factory, now=later)
    assert 1 <= recheck.hole_requests <= settings.poll_hole_requests
    # the trailing window, one backfill chunk for the 28 minutes since the last poll, the re-check
    assert recheck.requests == 2 + recheck.hole_requests
    stored = _stored(session, outpost.id)
    for index, value in enumerate(hole):
        assert stored[hole_start + dt.timedelta(minutes=index)] == value

    # Uptime now equals what CloudWatch's own data gives.
    end = _floor(later, 60)
    window_start = later - dt.timedelta(hours=24)
    known = [
        (start + dt.timedelta(minutes=i), v)
        for i, v in enumerate(values)
        if v is not None and start + dt.timedelta(minutes=i) < end
    ]
    connected = sum(v * 60 for ts, v in known if ts >= window_start)
    uptime = status.uptime_bulk(session, [outpost.id], ["24h"], later)[outpost.id]["24h"]
    assert uptime.known_seconds == len([1 for ts, _ in known if ts >= window_start]) * 60
    assert uptime.connected_seconds == connected

    # Once filled, the hole costs nothing more.
    (quiet,) = connectivity.poll_connectivity(
        settings, session_factory, now=first_poll + dt.timedelta(minutes=60)
    )
    assert quiet.hole_requests == 0 and quiet.requests == 2  # trailing window + backfill


def test_hole_windows_stay_within_budget_and_rotate() -> None:
    base = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    holes = {f"op-{i:04d}": [base + dt.timedelta(hours=3 * (i % 4))] for i in range(1200)}
    end = base + dt.timedelta(days=1)
    first = connectivity.plan_hole_windows(holes, end=end, budget=3, rotation=0)
    assert len(first) == 3 and all(len(w.outpost_ids) <= 500 for w in first)
    assert all(w.period == 60 and w.end - w.start <= dt.timedelta(hours=3) for w in first)
    seen = set()
    for rotation in range(4):
        seen |= {w.start for w in connectivity.plan_hole_windows(holes, end=end, budget=1, rotation=rotation)}
    assert len(seen) == 4  # every chunk gets its turn
    assert connectivity.plan_hole_windows(holes, end=end, budget=0, rotation=0) == []
