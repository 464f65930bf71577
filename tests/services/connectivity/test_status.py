"""Samples -> incidents, rollups, states and uptime (the service layer, on both databases)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.cloudwatch import Datapoint
from app.models.connectivity import ConnectedSample, HourlyRollup, Incident
from app.services.connectivity import status
from tests.factories import make_outposts, points

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def minute(i: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=i)


def incidents(session: Session, pk: int) -> list[tuple[dt.datetime, dt.datetime | None, float]]:
    session.expire_all()
    return [
        (i.started_at, i.ended_at, i.worst_value)
        for i in session.scalars(
            select(Incident).where(Incident.outpost_pk == pk).order_by(Incident.started_at)
        )
    ]


def reference_incidents(values: list[float | None]) -> list[tuple[dt.datetime, dt.datetime | None, float]]:
    """The definition, written plainly: runs below 1 that gaps do not break, ended by a 1."""
    found: list[tuple[dt.datetime, dt.datetime | None, float]] = []
    start: int | None = None
    worst = 1.0
    for i, value in enumerate(values):
        if value is None:
            continue
        if value < 1:
            if start is None:
                start, worst = i, value
            worst = min(worst, value)
        elif start is not None:
            found.append((minute(start), minute(i), worst))
            start = None
    if start is not None:
        found.append((minute(start), None, worst))
    return found


def test_flapping_gives_one_incident_per_dip_with_its_worst_value(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 0, 1, 0.5, 0.25, 1, 0])})
    assert incidents(session, outpost.id) == [
        (minute(1), minute(2), 0.0),
        (minute(3), minute(5), 0.25),
        (minute(6), None, 0.0),  # still open
    ]
    ongoing = session.scalars(select(Incident).where(Incident.ended_at.is_(None))).one()
    assert ongoing.last_below_at == minute(7)
    status.refresh_states(session, [outpost], minute(7) + dt.timedelta(seconds=10))
    assert (outpost.state, outpost.state_since) == ("DISCONNECTED", minute(6))


def test_a_gap_neither_ends_nor_starts_an_incident(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 0.5, None, None, None, 0, 1, None, 1])})
    assert incidents(session, outpost.id) == [(minute(1), minute(6), 0.0)]


def test_a_sample_of_one_closes_the_open_incident(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 0, 0])})
    first_id = session.scalars(select(Incident.id)).one()
    status.record_samples(session, {outpost.id: points(minute(3), [0, 1, 1])})
    assert incidents(session, outpost.id) == [(minute(1), minute(4), 0.0)]
    assert session.scalars(select(Incident.id)).one() == first_id  # updated in place, not replaced


def test_late_datapoint_splits_an_incident(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 0, 0, 0, 0.5])})
    assert incidents(session, outpost.id) == [(minute(1), None, 0.0)]
    # the Outpost's cached metrics arrive: minute 2 was connected after all
    result = status.record_samples(session, {outpost.id: [Datapoint(minute(2), 1.0, 60)]})
    assert (result.inserted, result.updated) == (0, 1)
    assert incidents(session, outpost.id) == [(minute(1), minute(2), 0.0), (minute(3), None, 0.0)]


def test_late_datapoint_merges_two_incidents(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 0.5, 1, 0.75, 1, 1])})
    assert len(incidents(session, outpost.id)) == 2
    status.record_samples(session, {outpost.id: [Datapoint(minute(2), 0.25, 60)]})
    assert incidents(session, outpost.id) == [(minute(1), minute(4), 0.25)]


def test_backfill_before_an_incident_moves_its_start(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(minute(3), [0, 0, 1])})
    assert incidents(session, outpost.id) == [(minute(3), minute(5), 0.0)]
    status.record_samples(session, {outpost.id: points(T0, [1, 0.5, 0.5])})
    assert incidents(session, outpost.id) == [(minute(1), minute(5), 0.0)]


@pytest.mark.parametrize("seed", range(6))
def test_incremental_polls_in_any_order_match_the_definition(session: Session, seed: int) -> None:
    """Overlapping windows, late changes and out-of-order backfill end where one full pass would."""
    rng = random.Random(seed)
    (outpost,) = make_outposts(session, 1)
    values: list[float | None] = [rng.choice([1.0, 1.0, 1.0, 0.0, 0.5, None]) for _ in range(90)]
    final = list(values)
    windows = []
    for _ in range(25):
        lo = rng.randrange(0, 85)
        windows.append((lo, min(90, lo + rng.randrange(3, 20))))
    windows.append((0, 90))
    for lo, hi in windows:
        batch = list(final[lo:hi])
        # a value seen early may be revised later (late datapoints): the last write wins
        if rng.random() < 0.3:
            j = rng.randrange(len(batch))
            batch[j] = rng.choice([0.0, 1.0, 0.25])
            final[lo + j] = batch[j]
        status.record_samples(session, {outpost.id: points(minute(lo), batch)})
    # a final pass with the settled values
    status.record_samples(session, {outpost.id: points(T0, final)})
    assert incidents(session, outpost.id) == reference_incidents(final)
    session.expire_all()
    rollups = session.scalars(select(HourlyRollup).where(HourlyRollup.outpost_pk == outpost.id)).all()
    known = [v for v in final if v is not None]
    assert sum(r.known_seconds for r in rollups) == pytest.approx(60 * len(known))
    assert sum(r.connected_seconds for r in rollups) == pytest.approx(60 * sum(known))
    assert sum(r.samples for r in rollups) == len(known)


def test_rollups_per_hour(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    start = T0 + dt.timedelta(minutes=58)
    status.record_samples(session, {outpost.id: points(start, [1, 0.5, 0, 1])})  # 10:58 .. 11:01
    session.expire_all()
    rows = {
        r.hour: (r.connected_seconds, r.known_seconds, r.min_value, r.avg_value, r.samples)
        for r in session.scalars(select(HourlyRollup))
    }
    assert rows == {
        T0: (90.0, 120.0, 0.5, 0.75, 2),
        T0 + dt.timedelta(hours=1): (60.0, 120.0, 0.0, 0.5, 2),
    }
    # a late correction of the hour's minimum is recomputed from raw samples
    status.record_samples(session, {outpost.id: [Datapoint(start + dt.timedelta(minutes=1), 1.0, 60)]})
    session.expire_all()
    first = session.get_one(HourlyRollup, (outpost.id, T0))
    assert (first.connected_seconds, first.min_value, first.samples) == (120.0, 1.0, 2)


def test_derive_state_rules() -> None:
    last = T0
    just_in_time = last + dt.timedelta(seconds=60 + 179)
    assert status.derive_state(last, 1.0, just_in_time) == "CONNECTED"
    assert status.derive_state(last, 0.99, just_in_time) == "DEGRADED"
    assert status.derive_state(last, 0.0, just_in_time) == "DISCONNECTED"
    # three whole periods without a datapoint: unknown, never "still connected"
    assert status.derive_state(last, 1.0, last + dt.timedelta(seconds=60 + 180)) == "UNKNOWN"
    assert status.derive_state(None, None, T0) == "UNKNOWN"
    assert status.derive_state(last, 1.0, just_in_time, reachable=False) == "UNKNOWN"


def test_state_since_moves_only_when_the_state_changes(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [0, 1, 1])})
    status.refresh_states(session, [outpost], minute(3))
    assert (outpost.state, outpost.state_since) == ("CONNECTED", minute(1))
    status.record_samples(session, {outpost.id: points(minute(3), [1, 1])})
    status.refresh_states(session, [outpost], minute(5))
    assert outpost.state_since == minute(1)
    status.refresh_states(session, [outpost], minute(9))  # no data since minute 5
    assert (outpost.state, outpost.state_since) == ("UNKNOWN", minute(5))
    status.refresh_states(session, [outpost], minute(20))
    assert outpost.state_since == minute(5)


def test_state_since_and_incident_start_follow_the_same_rule(session: Session) -> None:
    """Issue 19: a degraded minute before the cut made the page say "incident 20:30" and
    "disconnected since 20:31". Both now count from the first value below 1."""
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [1, 1, 0.5, 0, 0])})
    status.refresh_states(session, [outpost], minute(5))
    (incident,) = incidents(session, outpost.id)
    assert incident[0] == minute(2)
    assert (outpost.state, outpost.state_since) == ("DISCONNECTED", minute(2))
    # Back to degraded within the same incident: still since its start.
    status.record_samples(session, {outpost.id: points(minute(5), [0.5])})
    status.refresh_states(session, [outpost], minute(6))
    assert (outpost.state, outpost.state_since) == ("DEGRADED", minute(2))
    # Connected again: since the first sample at 1, the incident ended there.
    status.record_samples(session, {outpost.id: points(minute(6), [1, 1])})
    status.refresh_states(session, [outpost], minute(8))
    assert (outpost.state, outpost.state_since) == ("CONNECTED", minute(6))
    assert incidents(session, outpost.id)[0][1] == minute(6)


# ---------------------------------------------------------------- uptime


def test_uptime_counts_connected_over_known_and_reports_unknown(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    # 60 min up, 30 min down, 30 min without data, 30 min at 0.5
    values: list[float | None] = [1.0] * 60 + [0.0] * 30 + [None] * 30 + [0.5] * 30
    status.record_samples(session, {outpost.id: points(T0, values)})
    now = T0 + dt.timedelta(minutes=150)
    uptime = status.uptime_for(session, outpost.id, "24h", now)
    assert uptime.known_seconds == pytest.approx(120 * 60)
    assert uptime.connected_seconds == pytest.approx(60 * 60 + 15 * 60)
    assert uptime.unknown_seconds == pytest.approx(86400 - 120 * 60)
    assert uptime.ratio == pytest.approx(75 / 120)


def test_uptime_clips_the_first_partial_hour_to_the_window(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    status.record_samples(session, {outpost.id: points(T0, [0.0] * 30 + [1.0] * 30 + [1.0] * 60)})
    # 24 h window starting at 10:30 the day before... use a timedelta window starting at 10:30
    now = T0 + dt.timedelta(hours=2)
    uptime = status.uptime_for(session, outpost.id, dt.timedelta(minutes=90), now)
    assert uptime.known_seconds == pytest.approx(90 * 60)
    assert uptime.connected_seconds == pytest.approx(90 * 60)
    assert uptime.ratio == 1.0
    assert status.uptime_for(session, outpost.id, dt.timedelta(hours=2), now).ratio == pytest.approx(0.75)


def test_uptime_beyond_raw_retention_comes_from_rollups(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    old = T0 - dt.timedelta(days=40)
    status.record_samples(session, {outpost.id: points(old, [1.0] * 60 + [0.0] * 60)})
    status.record_samples(session, {outpost.id: points(T0, [1.0] * 60)})
    now = T0 + dt.timedelta(hours=1)
    before = status.uptime_for(session, outpost.id, "90d", now)
    session.execute(ConnectedSample.__table__.delete().where(ConnectedSample.ts < T0))
    after = status.uptime_for(session, outpost.id, "90d", now)
    assert after == before
    assert (after.connected_seconds, after.known_seconds) == (7200.0, 10800.0)
    assert status.uptime_for(session, outpost.id, "30d", now).known_seconds == 3600.0


def test_uptime_bulk_matches_single_calls(session: Session) -> None:
    outposts = make_outposts(session, 4)
    for index, outpost in enumerate(outposts):
        values: list[float | None] = [1.0 if (i + index) % (index + 2) else 0.0 for i in range(200)]
        status.record_samples(session, {outpost.id: points(T0 - dt.timedelta(hours=20), values)})
    now = T0 + dt.timedelta(minutes=7)
    bulk = status.uptime_bulk(session, [o.id for o in outposts], list(status.WINDOWS), now)
    for outpost in outposts:
        for window in status.WINDOWS:
            assert bulk[outpost.id][window] == status.uptime_for(session, outpost.id, window, now)
    assert bulk[outposts[0].id]["24h"].ratio == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown uptime window"):
        status.uptime_for(session, outposts[0].id, "1y", now)


def test_no_data_means_no_uptime_not_full_uptime(session: Session) -> None:
    (outpost,) = make_outposts(session, 1)
    uptime = status.uptime_for(session, outpost.id, "7d", T0)
    assert uptime.ratio is None
    assert uptime.unknown_seconds == 7 * 86400


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_partial_hour_counts_each_samples_overlap_with_the_window(session: Session, seed: int) -> None:
    """The SQL that clips samples to a window's partial hours (it decides inside and outside
    without computing epoch seconds, and computes them only near an edge) against a plain sum."""
    from sqlalchemy import func

    from app.services.connectivity.status import _clipped_seconds

    rng = random.Random(seed)
    (outpost,) = make_outposts(session, 1)
    stored: list[tuple[dt.datetime, int, float]] = []
    ts = T0 + dt.timedelta(seconds=rng.randrange(0, 90))
    while ts < T0 + dt.timedelta(hours=3):
        period = rng.choice([60, 60, 60, 300, 900])
        stored.append((ts, period, rng.choice([0.0, 0.5, 1.0])))
        ts += dt.timedelta(seconds=period + rng.choice([0, 0, 0, 7, 61, 400]))
    status.record_samples(session, {outpost.id: [Datapoint(t, v, p) for t, p, v in stored]})

    for _ in range(25):
        lo = T0 + dt.timedelta(seconds=rng.randrange(0, 3 * 3600))
        hi = lo + dt.timedelta(seconds=rng.randrange(1, 3600))
        overlap = _clipped_seconds(lo, hi)
        known, connected = session.execute(
            select(func.sum(overlap), func.sum(ConnectedSample.value * overlap)).where(
                ConnectedSample.outpost_pk == outpost.id
            )
        ).one()
        want_known = want_connected = 0.0
        for t, p, v in stored:
            part = max(0.0, (min(t + dt.timedelta(seconds=p), hi) - max(t, lo)).total_seconds())
            want_known += part
            want_connected += v * part
        assert (float(known), float(connected)) == pytest.approx((want_known, want_connected)), (lo, hi)


def test_uptime_reads_an_index_range_of_each_outposts_rows_never_all_its_history(session: Session) -> None:
    """Every statement of a bulk uptime seeks (outpost, time range) in its table's key. Ranges OR-ed
    in one statement made SQLite read every hourly rollup of each Outpost: a year of history made
    a poll's uptime 6 s for 1,000 Outposts (bench_write)."""
    from sqlalchemy import event

    outposts = make_outposts(session, 3)
    for outpost in outposts:
        status.record_samples(session, {outpost.id: points(T0 - dt.timedelta(hours=30), [1.0] * 1800)})
    captured: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        captured.append((statement, params))

    bind = session.connection()
    event.listen(bind, "before_cursor_execute", record)
    try:
        status.uptime_bulk(
            session, [o.id for o in outposts], tuple(status.WINDOWS), T0 + dt.timedelta(minutes=17)
        )
    finally:
        event.remove(bind, "before_cursor_execute", record)

    postgres = bind.dialect.name == "postgresql"
    if postgres:
        bind.exec_driver_sql("SET LOCAL enable_seqscan = off")  # tiny tables: ask for the plan at scale
    columns = {"hourly_rollups": "hour", "daily_rollups": "day", "connected_samples": "ts"}
    checked = 0
    for statement, params in captured:
        table = next((t for t in columns if f"from {t}" in statement.lower()), None)
        if table is None:
            continue
        plan = " ".join(
            " ".join(str(cell) for cell in row)
            for row in bind.exec_driver_sql(
                ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement, params
            )
        )
        column = columns[table]
        # A range (>=, <) or a list of values (IN) on the time column, inside the key seek.
        marks = (f"{column}>?", f"{column}=?") if not postgres else (f"({column} >= ", f"({column} = ANY")
        assert any(mark in plan for mark in marks), f"{table} read without a range on {column}: {plan}"
        checked += 1
    assert checked >= 6
