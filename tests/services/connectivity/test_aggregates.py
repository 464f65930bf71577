"""Daily rollups kept at write time (issue 20): uptime read from them equals uptime computed from
the raw samples, over random sequences with gaps, degraded values and day boundaries; a repeated
write cannot count twice; retention prunes both rollup levels consistently."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.integrations.cloudwatch import Datapoint
from app.models import ConnectedSample, DailyRollup, HourlyRollup
from app.services.connectivity import status
from app.services.connectivity.retention import apply_retention
from tests.factories import NOW, add_samples, make_outpost


def _oracle(session: Session, pk: int, start: dt.datetime, end: dt.datetime) -> tuple[float, float]:
    connected = known = 0.0
    for ts, value, period in session.execute(
        select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds).where(
            ConnectedSample.outpost_pk == pk
        )
    ):
        overlap = (min(ts + dt.timedelta(seconds=period), end) - max(ts, start)).total_seconds()
        if overlap > 0:
            connected += value * overlap
            known += overlap
    return connected, known


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_uptime_from_daily_rollups_equals_the_samples(session: Session, seed: int) -> None:
    rng = random.Random(seed)
    outposts = [make_outpost(session) for _ in range(3)]
    for outpost in outposts:
        # About 9 days of minute samples crossing UTC midnights, with gaps and degraded values
        # (60 s samples on minute boundaries never straddle an hour, as the rollups assume).
        start = NOW - dt.timedelta(days=9, minutes=rng.randrange(0, 600))
        values: list[float | None] = []
        for _ in range(9 * 1440):
            roll = rng.random()
            values.append(None if roll < 0.1 else 0.0 if roll < 0.15 else 0.5 if roll < 0.2 else 1.0)
        add_samples(session, outpost, start, values, period=60)
    now = NOW - dt.timedelta(minutes=rng.randrange(0, 59), seconds=rng.randrange(0, 59))
    found = status.uptime_bulk(session, [o.id for o in outposts], list(status.WINDOWS), now)
    for outpost in outposts:
        for name, span in status.WINDOWS.items():
            connected, known = _oracle(session, outpost.id, now - span, now)
            got = found[outpost.id][name]
            assert got.known_seconds == pytest.approx(known, abs=1e-6), (name, outpost.id)
            assert got.connected_seconds == pytest.approx(connected, abs=1e-6), (name, outpost.id)
    # Each daily row is the sum of its day's hourly rows.
    for pk, day, connected, known in session.execute(
        select(
            DailyRollup.outpost_pk, DailyRollup.day, DailyRollup.connected_seconds, DailyRollup.known_seconds
        )
    ):
        hours = session.execute(
            select(func.sum(HourlyRollup.connected_seconds), func.sum(HourlyRollup.known_seconds)).where(
                HourlyRollup.outpost_pk == pk,
                HourlyRollup.hour >= day,
                HourlyRollup.hour < day + dt.timedelta(days=1),
            )
        ).one()
        assert (connected, known) == pytest.approx((hours[0], hours[1]))


def test_a_repeated_write_does_not_count_twice(session: Session) -> None:
    outpost = make_outpost(session)
    start = NOW - dt.timedelta(days=2)
    points = [
        Datapoint(start + dt.timedelta(minutes=5 * i), 0.5 if i % 7 == 0 else 1.0, 300) for i in range(500)
    ]
    status.record_samples(session, {outpost.id: points})
    first = session.execute(
        select(DailyRollup.day, DailyRollup.known_seconds).order_by(DailyRollup.day)
    ).all()
    status.record_samples(session, {outpost.id: points})
    # A changed late value recomputes its day rather than adding to it.
    changed = [Datapoint(points[3].ts, 0.0, 300)]
    status.record_samples(session, {outpost.id: changed + points[:3]})
    status.record_samples(session, {outpost.id: changed})
    again = session.execute(
        select(DailyRollup.day, DailyRollup.known_seconds).order_by(DailyRollup.day)
    ).all()
    assert again == first
    assert sum(known for _, known in first) == 500 * 300


def test_retention_prunes_daily_rollups_with_the_hours(session: Session) -> None:
    outpost = make_outpost(session)
    add_samples(session, outpost, NOW - dt.timedelta(days=5), [1.0] * (5 * 288), period=300)
    apply_retention(session, NOW, raw_days=1, rollup_days=3, poll_run_days=30)
    cutoff = NOW - dt.timedelta(days=3)
    assert session.scalar(select(func.min(DailyRollup.day))) == cutoff.replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    daily = session.scalar(select(func.sum(DailyRollup.known_seconds)))
    hourly = session.scalar(select(func.sum(HourlyRollup.known_seconds)))
    assert daily == pytest.approx(hourly)
