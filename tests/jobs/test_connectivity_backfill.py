"""Gaps in polling (dashboard stopped, AWS unreachable) are backfilled with no hole CloudWatch could
have filled; late datapoints update stored values; the window planner's chunking and periods."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations.aws import AwsClients
from app.jobs import connectivity
from app.models.connectivity import ConnectedSample, Incident
from app.services.connectivity import status
from app.settings import Settings
from tests.conftest import free_port, make_settings
from tests.factories import make_outposts, minutes, seed
from tests.support.fake_cloudwatch import fake_cloudwatch

PLAN = {
    "trailing": dt.timedelta(minutes=15),
    "initial_backfill": dt.timedelta(hours=24),
    "max_backfill": dt.timedelta(days=63),
}


def _stored(session: Session, pk: int) -> list[tuple[dt.datetime, float, int]]:
    session.expire_all()
    return [
        tuple(row)  # type: ignore[misc]
        for row in session.execute(
            select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds)
            .where(ConnectedSample.outpost_pk == pk)
            .order_by(ConnectedSample.ts)
        )
    ]


def _holes(stamps: list[dt.datetime], period: int = 60) -> list[dt.datetime]:
    return [a for a, b in itertools.pairwise(stamps) if b - a != dt.timedelta(seconds=period)]


def test_dashboard_outage_is_backfilled_without_holes(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    start = now.replace(second=0) - dt.timedelta(minutes=45)
    values = [1.0] * 20 + [0.0] * 10 + [1.0] * 15  # an incident while the dashboard was down
    seed(aws_endpoint, minutes(start, values, outpost.outpost_id))

    connectivity.poll_connectivity(
        poll_settings, session_factory, now=start + dt.timedelta(minutes=10, seconds=30)
    )
    assert len(_stored(session, outpost.id)) == 5  # the trailing window only (never polled before)
    # the dashboard was stopped for 35 minutes; the next poll re-reads from the last stored sample
    (result,) = connectivity.poll_connectivity(poll_settings, session_factory, now=now)
    assert result.requests == 2  # the trailing window plus one backfill chunk

    stamps = [ts for ts, _, _ in _stored(session, outpost.id)]
    assert stamps[-1] == now.replace(second=0) - dt.timedelta(minutes=1)
    assert _holes(stamps) == []
    assert stamps[0] == start + dt.timedelta(minutes=5)
    assert [(i.started_at, i.ended_at) for i in session.scalars(select(Incident))] == [
        (start + dt.timedelta(minutes=20), start + dt.timedelta(minutes=30))
    ]
    assert session.get_one(type(outpost), outpost.id).state == "CONNECTED"


def test_aws_outage_is_backfilled_when_aws_is_back(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    start = now.replace(second=0) - dt.timedelta(minutes=30)
    seed(aws_endpoint, minutes(start, [1.0] * 30, outpost.outpost_id))
    closed = make_settings(
        database_url,
        aws_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_max_attempts=1,
        aws_connect_timeout_seconds=1,
    )
    connectivity.poll_connectivity(
        poll_settings, session_factory, now=start + dt.timedelta(minutes=6, seconds=5)
    )
    for minute in (10, 15, 20, 25):
        (failed,) = connectivity.poll_connectivity(
            closed, session_factory, now=start + dt.timedelta(minutes=minute)
        )
        assert failed.outcome == "unreachable"
    session.expire_all()
    assert session.get_one(type(outpost), outpost.id).state == "UNKNOWN"

    connectivity.poll_connectivity(poll_settings, session_factory, now=now)
    stamps = [ts for ts, _, _ in _stored(session, outpost.id)]
    assert (stamps[0], stamps[-1], _holes(stamps)) == (
        start + dt.timedelta(minutes=1),
        start + dt.timedelta(minutes=29),
        [],
    )
    session.expire_all()
    assert session.get_one(type(outpost), outpost.id).state == "CONNECTED"
    assert status.aws_vantage(session, now).reachable is True


def test_a_long_gap_is_fetched_in_bounded_chunks(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    end = now.replace(second=0)
    start = end - dt.timedelta(hours=7)
    seed(aws_endpoint, minutes(start, [1.0] * (7 * 60), outpost.outpost_id))
    session.add(svc_sample := ConnectedSample(outpost_pk=outpost.id, ts=start, value=1.0, period_seconds=60))
    outpost.last_sample_at = svc_sample.ts
    session.commit()

    (result,) = connectivity.poll_connectivity(poll_settings, session_factory, now=now)
    # 7 h minus the 5-minute trailing window = 3 h + 3 h + 55 min chunks, plus the trailing window
    assert result.requests == 4
    stamps = [ts for ts, _, _ in _stored(session, outpost.id)]
    assert (len(stamps), _holes(stamps)) == (7 * 60, [])


def test_backfill_older_than_15_days_uses_300_second_periods(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    end = now.replace(second=0)
    last_seen = end - dt.timedelta(days=16)
    outpost.last_sample_at = last_seen
    session.commit()
    # sparse history (one datapoint per 2 hours) keeps moto quick over 16 days
    stamps = [last_seen + dt.timedelta(hours=2 * i) for i in range(1, 16 * 12)]
    seed(aws_endpoint, [(outpost.outpost_id, ts, 1.0) for ts in stamps])

    connectivity.poll_connectivity(poll_settings, session_factory, now=now)
    stored = _stored(session, outpost.id)
    fifteen_days = now - dt.timedelta(days=15)
    assert {period for ts, _, period in stored if ts < fifteen_days - dt.timedelta(hours=1)} == {300}
    assert {period for ts, _, period in stored if ts > fifteen_days + dt.timedelta(hours=1)} == {60}
    # every seeded datapoint landed in exactly one stored period
    assert len(stored) == len([ts for ts in stamps if ts < end])


def test_late_datapoints_update_the_stored_value(
    poll_settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    now: dt.datetime,
) -> None:
    (outpost,) = make_outposts(session, 1)
    session.commit()
    t0 = now.replace(second=0) - dt.timedelta(minutes=4)
    seed(aws_endpoint, minutes(t0, [1.0, 0.0, 0.0, 1.0], outpost.outpost_id))
    connectivity.poll_connectivity(poll_settings, session_factory, now=now)
    assert [(i.started_at, i.worst_value) for i in session.scalars(select(Incident))] == [
        (t0 + dt.timedelta(minutes=1), 0.0)
    ]
    # the Outpost's cache delivers a second datapoint for minute 2: its Average becomes 0.5
    seed(aws_endpoint, [(outpost.outpost_id, t0 + dt.timedelta(minutes=2, seconds=10), 1.0)])
    connectivity.poll_connectivity(poll_settings, session_factory, now=now + dt.timedelta(seconds=15))
    values = [v for _, v, _ in _stored(session, outpost.id)]
    assert values == [1.0, 0.0, 0.5, 1.0]
    assert [(i.started_at, i.worst_value) for i in session.scalars(select(Incident))] == [
        (t0 + dt.timedelta(minutes=1), 0.0)
    ]


# ---------------------------------------------------------------- the planner


NOW = dt.datetime(2026, 11, 30, 12, 0, 30, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_plan_is_one_window_when_every_outpost_is_current() -> None:
    recent = END - dt.timedelta(minutes=2)
    windows = connectivity.plan_windows([("a", recent), ("b", recent)], NOW, **PLAN)
    assert windows == [connectivity.Window(END - dt.timedelta(minutes=15), END, 60, ("a", "b"))]


def test_plan_backfills_only_the_outposts_that_need_it() -> None:
    windows = connectivity.plan_windows(
        [("current", END - dt.timedelta(minutes=1)), ("behind", END - dt.timedelta(hours=4))], NOW, **PLAN
    )
    trailing_start = END - dt.timedelta(minutes=15)
    assert windows == [
        connectivity.Window(trailing_start, END, 60, ("current", "behind")),
        connectivity.Window(trailing_start - dt.timedelta(hours=3), trailing_start, 60, ("behind",)),
        connectivity.Window(
            END - dt.timedelta(hours=4), trailing_start - dt.timedelta(hours=3), 60, ("behind",)
        ),
    ]


def test_plan_for_a_long_gap_switches_to_300_seconds_and_stops_at_the_limit() -> None:
    windows = connectivity.plan_windows([("old", END - dt.timedelta(days=100))], NOW, **PLAN)
    for window in windows:
        assert window.start < window.end
        assert (window.end - window.start) <= dt.timedelta(
            seconds=window.period * connectivity.POINTS_PER_QUERY
        )
        age = NOW - window.start
        assert window.period == (60 if age <= dt.timedelta(days=15) else 300)
    # contiguous, no overlap, no hole, from 63 days back to now
    ordered = [*sorted(windows[1:], key=lambda w: w.start), windows[0]]
    assert all(a.end == b.start for a, b in itertools.pairwise(ordered))
    assert ordered[0].start >= NOW - dt.timedelta(days=63)
    assert ordered[0].start - (NOW - dt.timedelta(days=63)) < dt.timedelta(minutes=5)
    assert {w.period for w in windows} == {60, 300}


def test_plan_for_a_new_outpost_fetches_the_initial_history() -> None:
    windows = connectivity.plan_windows([("new", None)], NOW, **PLAN)
    covered = sum(((w.end - w.start) for w in windows), dt.timedelta())
    assert covered == dt.timedelta(hours=24, minutes=15)


def test_a_dropped_backfill_request_is_asked_again_by_the_next_cycle(
    session_factory: sessionmaker[Session],
    session: Session,
    aws_endpoint: str,
    database_url: str,
    now: dt.datetime,
) -> None:
    """Restart after 6 h; the first backfill request is dropped while the trailing window arrives.

    The trailing window moves every Outpost's newest sample to now, so a planner that starts from
    the newest sample alone never asks for those hours again (the hole check is off here).
    """
    outposts = make_outposts(session, 3)
    end = now.replace(second=0)
    start = end - dt.timedelta(hours=6)
    expected: dict[int, list[tuple[dt.datetime, float]]] = {}
    for n, outpost in enumerate(outposts):
        # each Outpost loses its link for 20 minutes inside the hours whose request is dropped
        values = [1.0] * 300 + [0.0] * 20 + [1.0] * 40
        values = values[n:] + values[:n]
        seed(aws_endpoint, minutes(start, values, outpost.outpost_id))
        expected[outpost.id] = [(start + dt.timedelta(minutes=i), v) for i, v in enumerate(values)]
        session.add(ConnectedSample(outpost_pk=outpost.id, ts=start, value=1.0, period_seconds=60))
        outpost.last_sample_at = start
        outpost.last_value = 1.0
    session.commit()

    with fake_cloudwatch(aws_endpoint, ["proxy", "drop"]) as (endpoint, fake):
        settings = make_settings(
            database_url,
            aws_endpoint_url=endpoint,
            poll_trailing_window_minutes=5,
            poll_hole_requests=0,
        )
        # No retry (botocore counts `max_attempts` as retries), so the one drop fails the request
        # the way a request fails once its retries are spent.
        clients = AwsClients(endpoint_url=endpoint, connect_timeout=2, read_timeout=120, max_attempts=0)
        (first,) = connectivity.poll_connectivity(settings, session_factory, now=now, clients=clients)
        assert fake.answers[:2] == ["proxy", "drop"]
        assert first.outcome == "partial"
        session.expire_all()
        marks = {o.id: session.get_one(type(o), o.id).backfill_from for o in outposts}
        # the dropped window and the one after it (skipped: CloudWatch counted as unreachable)
        assert set(marks.values()) == {start}
        assert all(len(_stored(session, o.id)) == 1 + 5 for o in outposts)  # the trailing window only

        (second,) = connectivity.poll_connectivity(
            settings, session_factory, now=now + dt.timedelta(minutes=1), clients=clients
        )
        assert second.outcome == "ok"

    session.expire_all()
    for outpost in outposts:
        stored = [(ts, value) for ts, value, _ in _stored(session, outpost.id)]
        assert stored == expected[outpost.id]  # the stored history equals CloudWatch's
        assert session.get_one(type(outpost), outpost.id).backfill_from is None
    incidents = {(i.outpost_pk, i.started_at, i.ended_at) for i in session.scalars(select(Incident))}
    assert incidents == {
        (o.id, start + dt.timedelta(minutes=300 - n), start + dt.timedelta(minutes=320 - n))
        for n, o in enumerate(outposts)
    }
