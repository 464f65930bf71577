"""Derived connectivity history kept in step with the samples: half-hour, hourly and daily rollups
and incidents.

All are updated only for what a batch of samples changed, so a poll costs the same whatever the
history's length, and late or backfilled datapoints extend, merge or split incidents correctly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.db import upsert
from app.integrations.cloudwatch import Datapoint
from app.models.connectivity import ConnectedSample, DailyRollup, HalfHourRollup, HourlyRollup, Incident

Changes = Mapping[int, Sequence[tuple[Datapoint, float | None]]]
_HOUR = dt.timedelta(hours=1)
HALF_HOUR = dt.timedelta(minutes=30)
_DAY = dt.timedelta(days=1)
_IN_CHUNK = 500


def _hour(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def half_hour_floor(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=ts.minute - ts.minute % 30, second=0, microsecond=0)


def day_floor(ts: dt.datetime) -> dt.datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class _Agg:
    connected: float = 0.0
    known: float = 0.0
    value_sum: float = 0.0
    count: int = 0
    min_value: float | None = None

    def add(self, value: float, period: int) -> None:
        self.connected += value * period
        self.known += period
        self.value_sum += value
        self.count += 1
        self.min_value = value if self.min_value is None else min(self.min_value, value)

    def row(self, pk: int, hour: dt.datetime) -> dict[str, object]:
        return {
            "outpost_pk": pk,
            "hour": hour,
            "connected_seconds": self.connected,
            "known_seconds": self.known,
            "min_value": self.min_value,
            "avg_value": self.value_sum / self.count if self.count else None,
            "samples": self.count,
        }

    def half_hour_row(self, pk: int, start: dt.datetime) -> dict[str, object]:
        return {
            "outpost_pk": pk,
            "start": start,
            "connected_seconds": self.connected,
            "known_seconds": self.known,
            "min_value": self.min_value,
            "samples": self.count,
        }


def update_rollups(session: Session, changes: Changes) -> None:
    """Bring the hourly rollups of every (Outpost, hour) the changes touched up to date.

    Each touched hour is recomputed from its raw samples, never incremented: a batch written twice
    (two schedulers, a retried poll, a re-fetched window) yields the same rollup as once.
    """
    touched = sorted({(pk, _hour(point.ts)) for pk, per in changes.items() for point, _ in per})
    if not touched:
        return
    halves: dict[tuple[int, dt.datetime], _Agg] = {}
    rows = _recompute_hours(session, touched, halves)
    upsert(
        session,
        HourlyRollup.__table__,  # type: ignore[arg-type]
        rows,
        conflict_columns=("outpost_pk", "hour"),
        update_columns=("connected_seconds", "known_seconds", "min_value", "avg_value", "samples"),
    )
    # The strip's half-hours come from the same samples, read once for both levels.
    upsert(
        session,
        HalfHourRollup.__table__,  # type: ignore[arg-type]
        [agg.half_hour_row(*key) for key, agg in halves.items()],
        conflict_columns=("outpost_pk", "start"),
        update_columns=("connected_seconds", "known_seconds", "min_value", "samples"),
    )
    update_daily_rollups(session, {(pk, day_floor(hour)) for pk, hour in touched})


def update_daily_rollups(
    session: Session, keys: set[tuple[int, dt.datetime]] | Sequence[tuple[int, dt.datetime]]
) -> int:
    """Recompute the daily rollups of the given (Outpost, UTC day)s from their hourly rollups.

    Recomputed, never incremented (like the hours): a repeated write cannot count twice. A day
    whose hours are all gone (retention) loses its row. Reads at most 24 hourly rows per key.
    """
    days: dict[tuple[int, dt.datetime], _DayAgg] = {key: _DayAgg() for key in keys}
    if not days:
        return 0
    pks = sorted({pk for pk, _ in days})
    lo = min(day for _, day in days)
    hi = max(day for _, day in days) + _DAY
    for start in range(0, len(pks), _IN_CHUNK):
        chunk = pks[start : start + _IN_CHUNK]
        rows = session.execute(
            select(
                HourlyRollup.outpost_pk,
                HourlyRollup.hour,
                HourlyRollup.connected_seconds,
                HourlyRollup.known_seconds,
                HourlyRollup.min_value,
                HourlyRollup.samples,
            ).where(HourlyRollup.outpost_pk.in_(chunk), HourlyRollup.hour >= lo, HourlyRollup.hour < hi)
        )
        for pk, hour, connected, known, low, count in rows:
            agg = days.get((pk, day_floor(hour)))
            if agg is not None:
                agg.add(connected, known, low, count)
    for pk, day in (key for key, agg in days.items() if not agg.hours):
        session.execute(
            delete(DailyRollup)
            .where(DailyRollup.outpost_pk == pk, DailyRollup.day == day)
            .execution_options(synchronize_session=False)
        )
    rows_out = [agg.row(*key) for key, agg in days.items() if agg.hours]
    upsert(
        session,
        DailyRollup.__table__,  # type: ignore[arg-type]
        rows_out,
        conflict_columns=("outpost_pk", "day"),
        update_columns=("connected_seconds", "known_seconds", "min_value", "samples"),
    )
    return len(rows_out)


@dataclass
class _DayAgg:
    """A UTC day's sums over its hourly rollups."""

    connected: float = 0.0
    known: float = 0.0
    min_value: float | None = None
    samples: int = 0
    hours: int = 0

    def add(self, connected: float, known: float, low: float | None, samples: int) -> None:
        self.connected += connected
        self.known += known
        if low is not None:
            self.min_value = low if self.min_value is None else min(self.min_value, low)
        self.samples += samples
        self.hours += 1

    def row(self, pk: int, day: dt.datetime) -> dict[str, object]:
        return {
            "outpost_pk": pk,
            "day": day,
            "connected_seconds": self.connected,
            "known_seconds": self.known,
            "min_value": self.min_value,
            "samples": self.samples,
        }


def _recompute_hours(
    session: Session,
    keys: Sequence[tuple[int, dt.datetime]],
    halves: dict[tuple[int, dt.datetime], _Agg] | None = None,
) -> list[dict[str, object]]:
    """The hourly rollup rows of `keys` from their raw samples; with `halves`, also fills in the
    sums of each half-hour of those hours that holds a sample."""
    if not keys:
        return []
    by_pk: dict[int, set[dt.datetime]] = defaultdict(set)
    for pk, hour in keys:
        by_pk[pk].add(hour)
    aggs: dict[tuple[int, dt.datetime], _Agg] = {key: _Agg() for key in keys}
    pks = sorted(by_pk)
    lo = min(hour for _, hour in keys)
    hi = max(hour for _, hour in keys) + _HOUR
    for start in range(0, len(pks), _IN_CHUNK):
        chunk = pks[start : start + _IN_CHUNK]
        rows = session.execute(
            select(
                ConnectedSample.outpost_pk,
                ConnectedSample.ts,
                ConnectedSample.value,
                ConnectedSample.period_seconds,
            ).where(ConnectedSample.outpost_pk.in_(chunk), ConnectedSample.ts >= lo, ConnectedSample.ts < hi)
        )
        for pk, ts, value, period in rows:
            agg = aggs.get((pk, _hour(ts)))
            if agg is not None:
                agg.add(value, period)
                if halves is not None:
                    halves.setdefault((pk, half_hour_floor(ts)), _Agg()).add(value, period)
    return [agg.row(*key) for key, agg in aggs.items()]


def rebuild_hour_rollups(session: Session, keys: Sequence[tuple[int, dt.datetime]]) -> int:
    """Recompute the given (Outpost, hour) rollups from raw samples (the retention job's safety net)."""
    rows = _recompute_hours(session, keys)
    upsert(
        session,
        HourlyRollup.__table__,  # type: ignore[arg-type]
        rows,
        conflict_columns=("outpost_pk", "hour"),
        update_columns=("connected_seconds", "known_seconds", "min_value", "avg_value", "samples"),
    )
    update_daily_rollups(session, {(pk, day_floor(hour)) for pk, hour in keys})
    return len(rows)


# ---------------------------------------------------------------- incidents


def rebuild_incidents(
    session: Session, changes: Changes, previous_latest: Mapping[int, dt.datetime | None]
) -> None:
    """Re-derive the incidents around each Outpost's changed samples.

    An incident is a run of samples below 1; a gap in the data neither starts nor ends one (missing
    data is never counted as connected). It ends at the first sample of 1 after it. For each
    Outpost the span from the last sample of 1 before the earliest change to the first sample of 1
    after the latest change is re-derived; no incident can cross those two samples, so the stored
    incidents outside the span stay valid. Incident rows inside the span keep their ids when their
    start did not move.

    Fast path: samples of 1 appended after the newest stored sample, with no incident open,
    change nothing.
    """
    open_pks = _open_incident_pks(session, list(changes))
    for pk, per in changes.items():
        latest = previous_latest.get(pk)
        appended_ok = all(
            old is None and point.value >= 1.0 and (latest is None or point.ts > latest) for point, old in per
        )
        if appended_ok and pk not in open_pks:
            continue
        _rebuild_span(session, pk, min(p.ts for p, _ in per), max(p.ts for p, _ in per))


def _open_incident_pks(session: Session, pks: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(pks), _IN_CHUNK):
        chunk = pks[start : start + _IN_CHUNK]
        found.update(
            session.scalars(
                select(Incident.outpost_pk).where(Incident.outpost_pk.in_(chunk), Incident.ended_at.is_(None))
            )
        )
    return found


@dataclass
class _Open:
    started_at: dt.datetime
    worst: float
    last_below_at: dt.datetime
    ended_at: dt.datetime | None = None


def _rebuild_span(session: Session, pk: int, first: dt.datetime, last: dt.datetime) -> None:
    sample = ConnectedSample
    lower = session.scalar(
        select(sample.ts)
        .where(sample.outpost_pk == pk, sample.ts < first, sample.value >= 1.0)
        .order_by(sample.ts.desc())
        .limit(1)
    )
    upper = session.scalar(
        select(sample.ts)
        .where(sample.outpost_pk == pk, sample.ts > last, sample.value >= 1.0)
        .order_by(sample.ts.asc())
        .limit(1)
    )
    stmt = select(sample.ts, sample.value, sample.period_seconds).where(sample.outpost_pk == pk)
    if lower is not None:
        stmt = stmt.where(sample.ts >= lower)
    if upper is not None:
        stmt = stmt.where(sample.ts <= upper)
    rows = session.execute(stmt.order_by(sample.ts)).all()
    if not rows:
        return
    span_start = lower if lower is not None else rows[0][0]

    # With no sample of 1 before the span, an incident may have begun in samples already removed by
    # retention: continue it rather than restarting it at the oldest raw sample.
    seed: Incident | None = None
    if lower is None:
        seed = session.scalar(
            select(Incident)
            .where(
                Incident.outpost_pk == pk,
                Incident.started_at < span_start,
                (Incident.ended_at.is_(None)) | (Incident.ended_at > span_start),
            )
            .order_by(Incident.started_at.desc())
            .limit(1)
        )

    derived: list[_Open] = []
    current: _Open | None = (
        _Open(seed.started_at, seed.worst_value, seed.last_below_at) if seed is not None else None
    )
    for ts, value, period in rows:
        end = ts + dt.timedelta(seconds=period)
        if value < 1.0:
            if current is None:
                current = _Open(ts, value, end)
            else:
                current.worst = min(current.worst, value)
                current.last_below_at = max(current.last_below_at, end)
        elif current is not None:
            current.ended_at = ts
            derived.append(current)
            current = None
    if current is not None:
        derived.append(current)

    stmt_existing = select(Incident).where(Incident.outpost_pk == pk, Incident.started_at >= span_start)
    if upper is not None:
        stmt_existing = stmt_existing.where(Incident.started_at < upper)
    existing = {incident.started_at: incident for incident in session.scalars(stmt_existing)}
    if seed is not None:
        existing[seed.started_at] = seed
    keep = {item.started_at for item in derived}
    for started_at, incident in existing.items():
        if started_at not in keep:
            session.delete(incident)
    session.flush()
    for item in derived:
        found = existing.get(item.started_at)
        if found is None:
            session.add(
                Incident(
                    outpost_pk=pk,
                    started_at=item.started_at,
                    ended_at=item.ended_at,
                    worst_value=item.worst,
                    last_below_at=item.last_below_at,
                )
            )
        else:
            found.ended_at = item.ended_at
            found.worst_value = item.worst
            found.last_below_at = item.last_below_at
    session.flush()


def incomplete_hours(
    session: Session, outpost_pks: Sequence[int], since: dt.datetime, until: dt.datetime
) -> dict[int, list[dt.datetime]]:
    """Hours in [since, until) with less than a full hour known: holes late data may still fill.

    An Outpost's history starts at its first stored hour; the hours before that, and that first
    (usually partial) hour itself, are not holes. One query over the hourly rollups, whatever the
    number of samples.
    """
    since, until = _hour(since), _hour(until)
    if not outpost_pks or since >= until:
        return {}
    known: dict[int, dict[dt.datetime, float]] = defaultdict(dict)
    first: dict[int, dt.datetime] = {}
    for offset in range(0, len(outpost_pks), _IN_CHUNK):
        chunk = list(outpost_pks[offset : offset + _IN_CHUNK])
        rows = session.execute(
            select(HourlyRollup.outpost_pk, func.min(HourlyRollup.hour))
            .where(HourlyRollup.outpost_pk.in_(chunk))
            .group_by(HourlyRollup.outpost_pk)
        )
        first.update({pk: hour for pk, hour in rows})
        for pk, hour, seconds in session.execute(
            select(HourlyRollup.outpost_pk, HourlyRollup.hour, HourlyRollup.known_seconds).where(
                HourlyRollup.outpost_pk.in_(chunk), HourlyRollup.hour >= since, HourlyRollup.hour < until
            )
        ):
            known[pk][hour] = seconds
    result: dict[int, list[dt.datetime]] = {}
    for pk, start in first.items():
        hour = max(since, start + _HOUR)
        holes = []
        while hour < until:
            if known[pk].get(hour, 0.0) < 3600.0:
                holes.append(hour)
            hour += _HOUR
        if holes:
            result[pk] = holes
    return result
