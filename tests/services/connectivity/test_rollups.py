"""Rollups are recomputed from the samples, never incremented (issue 11): two writers that both take
the same minute for new (two schedulers, a retried poll) cannot double-count it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.cloudwatch import Datapoint
from app.models.connectivity import HourlyRollup
from app.services.connectivity.history import update_rollups
from app.services.connectivity.status import record_samples
from tests.factories import make_outpost

HOUR = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)


def test_the_same_new_minutes_applied_twice_count_once(session: Session) -> None:
    outpost = make_outpost(session)
    session.flush()
    points = [Datapoint(HOUR + dt.timedelta(minutes=m), 1.0 if m % 2 else 0.0, 60) for m in range(10)]
    record_samples(session, {outpost.id: points})
    # A second writer that also saw these minutes as new (old value None) applies them again.
    update_rollups(session, {outpost.id: [(p, None) for p in points]})
    session.flush()
    session.expire_all()
    rollup = session.scalars(select(HourlyRollup).where(HourlyRollup.outpost_pk == outpost.id)).one()
    assert rollup.samples == 10
    assert rollup.known_seconds == 600
    assert rollup.connected_seconds == 300
    assert rollup.avg_value == 0.5
