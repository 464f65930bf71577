"""Uptime at a past instant counts only the window before it (a replica whose clock trails the
scheduler's asks for exactly that), and equals what the samples themselves say."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy.orm import Session

from app.services.connectivity import status
from tests.factories import make_outposts, points

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def from_samples(
    values: list[float | None], first: dt.datetime, start: dt.datetime, end: dt.datetime
) -> tuple[float, float]:
    """(connected, known) seconds of one-minute samples clipped to [start, end)."""
    connected = known = 0.0
    for index, value in enumerate(values):
        if value is None:
            continue
        ts = first + dt.timedelta(minutes=index)
        overlap = (min(ts + dt.timedelta(minutes=1), end) - max(ts, start)).total_seconds()
        if overlap > 0:
            connected += value * overlap
            known += overlap
    return connected, known


@pytest.mark.parametrize(
    "at",
    [
        T0 + dt.timedelta(hours=30, minutes=17, seconds=30),  # mid-hour, mid-minute
        T0 + dt.timedelta(hours=12),  # on an hour boundary
        T0 + dt.timedelta(hours=2, minutes=40),  # the window starts before the data
    ],
)
def test_uptime_at_a_past_instant_equals_the_samples(session: Session, at: dt.datetime) -> None:
    (outpost,) = make_outposts(session, 1)
    rng = random.Random(15)
    # Three days of minutes with dips and holes, most of them after `at`.
    values: list[float | None] = [
        None if rng.random() < 0.05 else (0.0 if rng.random() < 0.1 else 1.0) for _ in range(3 * 1440)
    ]
    status.record_samples(session, {outpost.id: points(T0, values)})
    bulk = status.uptime_bulk(session, [outpost.id], ["24h", "7d"], at)
    for window, span in (("24h", dt.timedelta(hours=24)), ("7d", dt.timedelta(days=7))):
        connected, known = from_samples(values, T0, at - span, at)
        got = bulk[outpost.id][window]
        assert got.known_seconds == pytest.approx(known), window
        assert got.connected_seconds == pytest.approx(connected), window
        assert got.unknown_seconds == pytest.approx(span.total_seconds() - known), window
        assert got.known_seconds < span.total_seconds()  # never "100 % known" from later hours


def test_past_instant_ignores_hours_after_it(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    # One hour connected, then 10 hours disconnected after `at`.
    status.record_samples(session, {outpost.id: points(T0, [1.0] * 60 + [0.0] * 600)})
    at = T0 + dt.timedelta(hours=1)
    uptime = status.uptime_bulk(session, [outpost.id], ["24h"], at)[outpost.id]["24h"]
    assert (uptime.connected_seconds, uptime.known_seconds) == (3600.0, 3600.0)
