"""Connectivity use cases: record ConnectedStatus samples, derive states, incidents and rollups,
and answer uptime and "can the dashboard reach AWS" for readers. Flush, never commit.

Readers (pages, API, /metrics) call `current_uptime`, `uptime_for`, `uptime_bulk` and
`aws_vantage`; the poll job calls `record_samples`, `refresh_states`, `store_uptime` and
`record_outpost_errors`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, false, func, or_, select
from sqlalchemy.orm import Session

from app.db import time_bucket, upsert
from app.integrations.cloudwatch import Datapoint
from app.models.connectivity import ConnectedSample, DailyRollup, HourlyRollup, UptimeWindow
from app.models.fleet import Outpost
from app.models.poll_run import PollRun
from app.services.connectivity.history import rebuild_incidents, update_rollups
from app.services.notifications.events import NotifyPolicy, outpost_state_changed

CONNECTED = "CONNECTED"
DEGRADED = "DEGRADED"
DISCONNECTED = "DISCONNECTED"
UNKNOWN = "UNKNOWN"
STATES = (CONNECTED, DEGRADED, DISCONNECTED, UNKNOWN)
# The one spelling of each state on every page (the stored and API values stay upper case).
STATE_LABELS = {
    CONNECTED: "Connected",
    DEGRADED: "Degraded",
    DISCONNECTED: "Disconnected",
    UNKNOWN: "Unknown",
}

# The Period of live samples; a state is UNKNOWN once this many periods passed without a datapoint.
LIVE_PERIOD = 60
MISSING_PERIODS_FOR_UNKNOWN = 3

# PollRun.job and the outcomes the connectivity poller records.
POLL_JOB = "connectivity"
OUTCOME_OK = "ok"
OUTCOME_PARTIAL = "partial"  # some requests or Outposts failed, the rest was stored
OUTCOME_ERROR = "error"
OUTCOME_UNREACHABLE = "unreachable"  # no request reached CloudWatch (connect error or timeout)

WINDOWS: dict[str, dt.timedelta] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
}

_IN_CHUNK = 500  # bound IN (...) lists for both drivers


def classify(value: float) -> str:
    """The state a single Average means: 1 connected, 0 disconnected, in between degraded."""
    if value >= 1.0:
        return CONNECTED
    if value <= 0.0:
        return DISCONNECTED
    return DEGRADED


# ---------------------------------------------------------------- results for readers


@dataclass(frozen=True)
class Uptime:
    """Connected time over known time in a window; unknown time is reported beside it, never as up."""

    window: str
    start: dt.datetime
    end: dt.datetime
    connected_seconds: float
    known_seconds: float
    unknown_seconds: float
    # Drill time inside the window, left out of the three figures above (issue 17).
    drill_seconds: float = 0.0

    @property
    def ratio(self) -> float | None:
        """connected / known, or None when nothing in the window is known."""
        return self.connected_seconds / self.known_seconds if self.known_seconds > 0 else None


@dataclass(frozen=True)
class Vantage:
    """Whether the dashboard itself can reach AWS, from the latest connectivity poll runs."""

    # None before the first poll has finished.
    reachable: bool | None
    # Start of the run of consecutive unreachable polls (None while reachable).
    unreachable_since: dt.datetime | None
    last_ok_at: dt.datetime | None
    last_checked_at: dt.datetime | None
    message: str | None
    # Where the answer comes from: the poll runs, or this dashboard's site probes (issue 13).
    source: str = "connectivity polls"


@dataclass(frozen=True)
class RecordResult:
    inserted: int
    updated: int
    unchanged: int
    # Outposts whose history changed (their rollups and incidents were brought up to date).
    changed_outposts: frozenset[int]


# ---------------------------------------------------------------- uptime


def _window(window: str | dt.timedelta) -> tuple[str, dt.timedelta]:
    if isinstance(window, dt.timedelta):
        return f"{int(window.total_seconds())}s", window
    try:
        return window, WINDOWS[window]
    except KeyError:
        raise ValueError(f"unknown uptime window {window!r}; use one of {', '.join(WINDOWS)}") from None


def _hour_floor(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _day_floor(ts: dt.datetime) -> dt.datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _day_ceil(ts: dt.datetime) -> dt.datetime:
    floored = _day_floor(ts)
    return floored if floored == ts else floored + dt.timedelta(days=1)


def uptime_for(session: Session, outpost_pk: int, window: str | dt.timedelta, now: dt.datetime) -> Uptime:
    """Uptime of one Outpost over [now - window, now); `window`: "24h", "7d", "30d", "90d" or a timedelta."""
    return uptime_bulk(session, [outpost_pk], [window], now)[outpost_pk][_window(window)[0]]


def uptime_bulk(
    session: Session,
    outpost_pks: Sequence[int],
    windows: Sequence[str | dt.timedelta] = tuple(WINDOWS),
    now: dt.datetime | None = None,
) -> dict[int, dict[str, Uptime]]:
    """Uptime for many Outposts and windows at once: {outpost_pk: {window: Uptime}}.

    Whole days come from the daily rollups and the hours beside them from the hourly rollups (both
    kept for years, maintained as samples arrive, in the same transaction); the partial hour at the
    start of a window and the one holding `now` come from their raw samples, clipped to the window
    and summed in SQL (about 60 rows an Outpost, none of them sent to Python), or are prorated from
    their rollup when the raw samples are past retention. Costs a fixed number of queries whatever
    the number of Outposts.
    """
    if now is None:
        raise ValueError("uptime_bulk needs `now` (an aware UTC datetime)")
    named = [_window(w) for w in windows]
    pks = list(dict.fromkeys(outpost_pks))
    result: dict[int, dict[str, Uptime]] = {pk: {} for pk in pks}
    if not pks or not named:
        return result
    starts = {name: now - span for name, span in named}
    first_full_hour = {name: _hour_floor(start) + dt.timedelta(hours=1) for name, start in starts.items()}
    # Bounded above too: at a past instant the hours after `now` must not count.
    end_hour = _hour_floor(now)

    # Whole hours: whole UTC days from the daily rollups (one row per day), the hours either side
    # of them from the hourly rollups (fewer than 48 per window): one conditional sum per window
    # each, so the rows read per Outpost are bounded by the window's days, not 24 per day.
    sums: dict[int, dict[str, tuple[float, float]]] = defaultdict(dict)
    day_spans: dict[str, tuple[dt.datetime, dt.datetime] | None] = {}
    hour_spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for name, _span in named:
        lo, hi = first_full_hour[name], end_hour
        day_lo, day_hi = _day_ceil(lo), _day_floor(hi)
        if day_lo < day_hi:
            day_spans[name] = (day_lo, day_hi)
            hour_spans[name] = [(a, b) for a, b in ((lo, day_lo), (day_hi, hi)) if a < b]
        else:
            day_spans[name] = None
            hour_spans[name] = [(lo, hi)] if lo < hi else []
    hour_ranges = [r for spans in hour_spans.values() for r in spans]
    day_ranges = [r for r in day_spans.values() if r is not None]

    def add(pk: int, name: str, connected: Any, known: Any) -> None:
        before = sums[pk].get(name, (0.0, 0.0))
        sums[pk][name] = (before[0] + float(connected or 0.0), before[1] + float(known or 0.0))

    for chunk in _chunks(pks):
        # One query per distinct hour range (the range ending at `now`'s hour is shared by every
        # window with whole days): each is an index range on (outpost_pk, hour). OR-ing the ranges
        # in one query made SQLite read every hourly rollup of each Outpost, a year of them.
        for a, b in sorted(set(hour_ranges)):
            names = [name for name, _span in named if (a, b) in hour_spans[name]]
            stmt = (
                select(
                    HourlyRollup.outpost_pk,
                    func.sum(HourlyRollup.connected_seconds),
                    func.sum(HourlyRollup.known_seconds),
                )
                .where(HourlyRollup.outpost_pk.in_(chunk), HourlyRollup.hour >= a, HourlyRollup.hour < b)
                .group_by(HourlyRollup.outpost_pk)
            )
            for pk, connected, known in session.execute(stmt):
                for name in names:
                    add(pk, name, connected, known)
        if day_ranges:
            columns = []
            for name, _span in named:
                found = day_spans[name]
                cond = and_(DailyRollup.day >= found[0], DailyRollup.day < found[1]) if found else false()
                columns.append(func.sum(_case(cond, DailyRollup.connected_seconds)))
                columns.append(func.sum(_case(cond, DailyRollup.known_seconds)))
            stmt = (
                select(DailyRollup.outpost_pk, *columns)
                .where(
                    DailyRollup.outpost_pk.in_(chunk),
                    DailyRollup.day >= min(a for a, _ in day_ranges),
                    DailyRollup.day < max(b for _, b in day_ranges),
                )
                .group_by(DailyRollup.outpost_pk)
            )
            for row in session.execute(stmt):
                for index, (name, _span) in enumerate(named):
                    add(row[0], name, row[1 + 2 * index], row[2 + 2 * index])

    # Partial hours: the first hour of each window and the hour holding `now`, from raw samples
    # clipped to [lo, hi) where we still have them, else prorated from the hour's rollup.
    partials: dict[str, list[tuple[dt.datetime, dt.datetime, dt.datetime]]] = {}
    for name, _span in named:
        start = starts[name]
        hour = _hour_floor(start)
        spans = [(hour, start, min(first_full_hour[name], now))]
        if end_hour >= first_full_hour[name] and now > end_hour:
            spans.append((end_hour, end_hour, now))
        partials[name] = spans
    partial_hours = {hour for spans in partials.values() for hour, _lo, _hi in spans}
    # Each partial span's samples are clipped to it and summed in SQL (one grouped query per span
    # for every Outpost), so no sample row crosses into Python; `count` says whether the hour still
    # has its raw samples at all.
    clipped: dict[tuple[int, dt.datetime, dt.datetime], tuple[int, float, float]] = {}
    rollups: dict[tuple[int, dt.datetime], tuple[float, float]] = {}
    spans_wanted = {(hour, lo, hi) for spans in partials.values() for hour, lo, hi in spans}
    for chunk in _chunks(pks):
        for hour, lo, hi in spans_wanted:
            overlap = _clipped_seconds(lo, hi)
            for pk, count, known_part, connected_part in session.execute(
                select(
                    ConnectedSample.outpost_pk,
                    func.count(),
                    func.sum(overlap),
                    func.sum(ConnectedSample.value * overlap),
                )
                .where(
                    ConnectedSample.outpost_pk.in_(chunk),
                    ConnectedSample.ts >= hour,
                    ConnectedSample.ts < hour + dt.timedelta(hours=1),
                )
                .group_by(ConnectedSample.outpost_pk)
            ):
                clipped[(pk, lo, hi)] = (int(count), float(known_part or 0.0), float(connected_part or 0.0))
        rollup_rows = session.execute(
            select(
                HourlyRollup.outpost_pk,
                HourlyRollup.hour,
                HourlyRollup.connected_seconds,
                HourlyRollup.known_seconds,
            ).where(HourlyRollup.outpost_pk.in_(chunk), HourlyRollup.hour.in_(sorted(partial_hours)))
        )
        for pk, hour, connected, known in rollup_rows:
            rollups[(pk, hour)] = (connected, known)

    for pk in pks:
        for name, span in named:
            connected, known = sums.get(pk, {}).get(name, (0.0, 0.0))
            for hour, lo, hi in partials[name]:
                part = clipped.get((pk, lo, hi))
                if part is not None and part[0] > 0:
                    known += part[1]
                    connected += part[2]
                elif (pk, hour) in rollups and (lo > hour or hi < hour + dt.timedelta(hours=1)):
                    fraction = (hi - lo).total_seconds() / 3600.0
                    connected += rollups[(pk, hour)][0] * fraction
                    known += rollups[(pk, hour)][1] * fraction
                elif (pk, hour) in rollups:
                    connected += rollups[(pk, hour)][0]
                    known += rollups[(pk, hour)][1]
            total = span.total_seconds()
            known = min(known, total)
            connected = min(connected, known)
            result[pk][name] = Uptime(name, starts[name], now, connected, known, total - known)
    return result


# ---------------------------------------------------------------- stored uptime (written by polls)


def store_uptime(
    session: Session, outpost_pks: Sequence[int], now: dt.datetime, *, valid_for: dt.timedelta
) -> int:
    """Write every window's uptime of these Outposts as of `now` (uptime_windows), for readers until
    `now + valid_for`. The poll calls it in the transaction that stored its samples, so a reader
    sees the samples and the uptime made from them together. Returns the rows written."""
    pks = list(dict.fromkeys(outpost_pks))
    if not pks:
        return 0
    until = now + valid_for
    rows = [
        {
            "outpost_pk": pk,
            "window_key": name,
            "as_of": now,
            "valid_until": until,
            "connected_seconds": found.connected_seconds,
            "known_seconds": found.known_seconds,
            "ratio": found.ratio,
        }
        for pk, by_window in uptime_bulk(session, pks, tuple(WINDOWS), now).items()
        for name, found in by_window.items()
    ]
    upsert(
        session,
        UptimeWindow.__table__,  # type: ignore[arg-type]
        rows,
        conflict_columns=("outpost_pk", "window_key"),
        update_columns=("as_of", "valid_until", "connected_seconds", "known_seconds", "ratio"),
    )
    return len(rows)


def forget_uptime(session: Session, outpost_pks: Iterable[int]) -> None:
    """Drop the stored uptime of Outposts whose samples changed: it no longer says what they hold
    (readers compute it until the next poll stores it again)."""
    for chunk in _chunks(list(outpost_pks)):
        session.execute(delete(UptimeWindow).where(UptimeWindow.outpost_pk.in_(chunk)))


def fresh_uptime_clause(now: dt.datetime) -> Any:
    """SQL: a stored uptime row a reader at `now` may take."""
    return and_(UptimeWindow.as_of <= now, UptimeWindow.valid_until > now)


def current_uptime(
    session: Session,
    outpost_pks: Sequence[int],
    windows: Sequence[str] = tuple(WINDOWS),
    now: dt.datetime | None = None,
) -> dict[int, dict[str, Uptime]]:
    """Uptime for many Outposts: the rows the last poll stored (one per Outpost and window, an
    index read) where they are still valid at `now`, computed by `uptime_bulk` for the rest (no poll
    yet, polling stopped, samples written since, or a window that is not stored). A stored figure
    covers [as_of - window, as_of): its `end` says as of when."""
    if now is None:
        raise ValueError("current_uptime needs `now` (an aware UTC datetime)")
    pks = list(dict.fromkeys(outpost_pks))
    names = list(dict.fromkeys(windows))
    if not pks or not names or any(name not in WINDOWS for name in names):
        return uptime_bulk(session, pks, names, now)
    result: dict[int, dict[str, Uptime]] = {pk: {} for pk in pks}
    for chunk in _chunks(pks):
        rows = session.execute(
            select(
                UptimeWindow.outpost_pk,
                UptimeWindow.window_key,
                UptimeWindow.as_of,
                UptimeWindow.connected_seconds,
                UptimeWindow.known_seconds,
            ).where(
                UptimeWindow.outpost_pk.in_(chunk),
                UptimeWindow.window_key.in_(names),
                fresh_uptime_clause(now),
            )
        )
        for pk, name, as_of, connected, known in rows:
            total = WINDOWS[name].total_seconds()
            result[pk][name] = Uptime(name, as_of - WINDOWS[name], as_of, connected, known, total - known)
    missing = [pk for pk in pks if len(result[pk]) < len(names)]
    if missing:
        result.update(uptime_bulk(session, missing, names, now))
    return result


# A sample of at most this period that starts in [lo, hi - this) lies wholly inside [lo, hi).
_INSIDE_PERIOD = 300


def _clipped_seconds(lo: dt.datetime, hi: dt.datetime) -> Any:
    """SQL for the seconds of a sample's [ts, ts + period) inside [lo, hi) (0 when outside).

    A sample wholly inside counts its period and one wholly outside 0, decided by comparing the
    stored `ts` with bound values; only the few samples near an edge have their epoch seconds
    computed (the CASE stops at the first branch that holds): on SQLite that computation for every
    sample was most of the cost of a window's partial hours.
    """
    start = time_bucket(ConnectedSample.ts, 0, 1)
    end = start + ConnectedSample.period_seconds
    lo_s, hi_s = lo.timestamp(), hi.timestamp()
    overlap = case((end < hi_s, end), else_=hi_s) - case((start > lo_s, start), else_=lo_s)
    short = ConnectedSample.period_seconds <= _INSIDE_PERIOD
    edge = dt.timedelta(seconds=_INSIDE_PERIOD)
    inside = and_(ConnectedSample.ts >= lo, ConnectedSample.ts < hi - edge, short)
    outside = or_(ConnectedSample.ts >= hi, and_(ConnectedSample.ts < lo - edge, short))
    return case((inside, ConnectedSample.period_seconds), (outside, 0.0), (overlap > 0, overlap), else_=0.0)


def _case(cond: Any, value: Any) -> Any:
    return case((cond, value), else_=0.0)


def _chunks(items: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield list(items[start : start + _IN_CHUNK])


# ---------------------------------------------------------------- vantage


def aws_vantage(session: Session, now: dt.datetime) -> Vantage:
    """Can the dashboard reach AWS? Unreachable when every region's latest connectivity run was.

    `unreachable_since` is the start of the unbroken streak of unreachable runs (any region), so
    the banner can say "AWS unreachable from this dashboard since 14:02 (2 h)".
    """
    runs = session.execute(
        select(PollRun.scope, PollRun.outcome, PollRun.started_at, PollRun.finished_at, PollRun.error)
        .where(PollRun.job == POLL_JOB, PollRun.outcome != "running")
        .order_by(PollRun.started_at.desc(), PollRun.id.desc())
        .limit(2000)
    ).all()
    if not runs:
        return Vantage(None, None, None, None, None)
    latest_by_scope: dict[str, str] = {}
    for scope, outcome, *_ in runs:
        latest_by_scope.setdefault(scope, outcome)
    last_checked = runs[0].finished_at or runs[0].started_at
    last_ok = next((r.finished_at or r.started_at for r in runs if r.outcome != OUTCOME_UNREACHABLE), None)
    if not all(outcome == OUTCOME_UNREACHABLE for outcome in latest_by_scope.values()):
        return Vantage(True, None, last_ok, last_checked, None)
    since = runs[0].started_at
    for run in runs:
        if run.outcome != OUTCOME_UNREACHABLE:
            break
        since = run.started_at
    return Vantage(False, since, last_ok, last_checked, runs[0].error)


# ---------------------------------------------------------------- recording


def record_samples(
    session: Session,
    samples: Mapping[int, Sequence[Datapoint]],
    *,
    frozen_before: dt.datetime | None = None,
) -> RecordResult:
    """Upsert datapoints per Outpost (keyed on outpost_pk, ts) and bring rollups and incidents up to date.

    Idempotent: datapoints already stored with the same value and period are not written again and
    touch nothing else; a late datapoint that changes a stored value updates it. Also moves each
    Outpost's `last_sample_at`/`last_value` forward.

    `frozen_before` (the raw-retention horizon): an older datapoint is only taken when its hour has
    no rollup yet. Raw samples past retention are gone but still counted in their rollup, so
    re-reading them would count them twice.
    """
    wanted = {pk: {p.ts: p for p in points} for pk, points in samples.items() if points}
    if frozen_before is not None:
        _drop_frozen(session, wanted, frozen_before)
    if not wanted:
        return RecordResult(0, 0, 0, frozenset())
    existing = _existing_samples(session, wanted)
    rows: list[dict[str, object]] = []
    changes: dict[int, list[tuple[Datapoint, float | None]]] = defaultdict(list)
    unchanged = 0
    for pk, points in wanted.items():
        stored = existing.get(pk, {})
        for ts, point in points.items():
            before = stored.get(ts)
            if before is not None and before == (point.value, point.period):
                unchanged += 1
                continue
            rows.append({"outpost_pk": pk, "ts": ts, "value": point.value, "period_seconds": point.period})
            changes[pk].append((point, None if before is None else before[0]))
    upsert(
        session,
        ConnectedSample.__table__,  # type: ignore[arg-type]
        rows,
        conflict_columns=("outpost_pk", "ts"),
        update_columns=("value", "period_seconds"),
    )
    if changes:
        outposts = _outposts_by_pk(session, list(changes))
        update_rollups(session, changes)
        forget_uptime(session, changes)
        rebuild_incidents(
            session, changes, {pk: outposts[pk].last_sample_at for pk in changes if pk in outposts}
        )
        _advance_latest(outposts, changes)
        session.flush()
    inserted = sum(1 for per in changes.values() for _, old in per if old is None)
    return RecordResult(inserted, len(rows) - inserted, unchanged, frozenset(changes))


def _drop_frozen(
    session: Session, wanted: dict[int, dict[dt.datetime, Datapoint]], frozen_before: dt.datetime
) -> None:
    old = {pk: [ts for ts in points if ts < frozen_before] for pk, points in wanted.items()}
    old = {pk: stamps for pk, stamps in old.items() if stamps}
    if not old:
        return
    lo = _hour_floor(min(min(stamps) for stamps in old.values()))
    rolled: set[tuple[int, dt.datetime]] = set()
    for chunk in _chunks(list(old)):
        rolled.update(
            (pk, hour)
            for pk, hour in session.execute(
                select(HourlyRollup.outpost_pk, HourlyRollup.hour).where(
                    HourlyRollup.outpost_pk.in_(chunk),
                    HourlyRollup.hour >= lo,
                    HourlyRollup.hour < frozen_before,
                )
            )
        )
    for pk, stamps in old.items():
        for ts in stamps:
            if (pk, _hour_floor(ts)) in rolled:
                del wanted[pk][ts]
        if not wanted[pk]:
            del wanted[pk]


def _existing_samples(
    session: Session, wanted: Mapping[int, Mapping[dt.datetime, Datapoint]]
) -> dict[int, dict[dt.datetime, tuple[float, int]]]:
    lo = min(min(points) for points in wanted.values())
    hi = max(max(points) for points in wanted.values())
    found: dict[int, dict[dt.datetime, tuple[float, int]]] = defaultdict(dict)
    for chunk in _chunks(list(wanted)):
        rows = session.execute(
            select(
                ConnectedSample.outpost_pk,
                ConnectedSample.ts,
                ConnectedSample.value,
                ConnectedSample.period_seconds,
            ).where(ConnectedSample.outpost_pk.in_(chunk), ConnectedSample.ts >= lo, ConnectedSample.ts <= hi)
        )
        for pk, ts, value, period in rows:
            found[pk][ts] = (value, period)
    return found


def _advance_latest(
    outposts: Mapping[int, Outpost], changes: Mapping[int, list[tuple[Datapoint, float | None]]]
) -> None:
    for pk, per in changes.items():
        newest = max((point for point, _ in per), key=lambda p: p.ts)
        outpost = outposts.get(pk)
        if outpost is None:
            continue
        if outpost.last_sample_at is None or newest.ts >= outpost.last_sample_at:
            outpost.last_sample_at = newest.ts
            outpost.last_value = newest.value


def _outposts_by_pk(session: Session, pks: Sequence[int]) -> dict[int, Outpost]:
    found: dict[int, Outpost] = {}
    for chunk in _chunks(list(pks)):
        for outpost in session.scalars(select(Outpost).where(Outpost.id.in_(chunk))):
            found[outpost.id] = outpost
    return found


# ---------------------------------------------------------------- states


def derive_state(
    last_sample_at: dt.datetime | None, last_value: float | None, now: dt.datetime, *, reachable: bool = True
) -> str:
    """CONNECTED / DEGRADED / DISCONNECTED from the latest Average; UNKNOWN when it is 3+ periods old,
    there is none, or CloudWatch cannot be reached. Missing data never counts as connected."""
    if not reachable or last_sample_at is None or last_value is None:
        return UNKNOWN
    missing = now - (last_sample_at + dt.timedelta(seconds=LIVE_PERIOD))
    if missing >= dt.timedelta(seconds=LIVE_PERIOD * MISSING_PERIODS_FOR_UNKNOWN):
        return UNKNOWN
    return classify(last_value)


def refresh_states(
    session: Session, outposts: Sequence[Outpost], now: dt.datetime, *, reachable: bool = True
) -> dict[int, str]:
    """Recompute each Outpost's state; `state_since` moves only when the state changes.

    For a sample-derived state, `state_since` is the start of the unbroken run of samples of that
    class (found in the stored history); for UNKNOWN it is the end of the last datapoint.
    """
    states: dict[int, str] = {}
    for outpost in outposts:
        state = derive_state(outpost.last_sample_at, outpost.last_value, now, reachable=reachable)
        states[outpost.id] = state
        if state == outpost.state and outpost.state_since is not None:
            continue
        previous = outpost.state
        outpost.state = state
        if state == UNKNOWN:
            outpost.state_since = (
                outpost.last_sample_at + dt.timedelta(seconds=LIVE_PERIOD)
                if outpost.last_sample_at is not None
                else now
            )
            outpost.state_since = min(outpost.state_since, now)
        else:
            outpost.state_since = _run_start(session, outpost.id, state, outpost.last_sample_at or now)
        if previous != state:
            # The notification is written in this transaction, with the state it announces.
            outpost_state_changed(session, outpost, previous, state, now, NotifyPolicy())
    session.flush()
    return states


def _run_start(session: Session, outpost_pk: int, state: str, latest: dt.datetime) -> dt.datetime:
    rows = session.execute(
        select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds)
        .where(ConnectedSample.outpost_pk == outpost_pk, ConnectedSample.ts <= latest)
        .order_by(ConnectedSample.ts.desc())
        .limit(1440)
    ).all()
    since = latest
    for ts, value, period in rows:
        gap = (since - (ts + dt.timedelta(seconds=period))).total_seconds()
        if not _same_stretch(state, value) or gap >= LIVE_PERIOD * MISSING_PERIODS_FOR_UNKNOWN:
            break
        since = ts
    return since


def _same_stretch(state: str, value: float) -> bool:
    """Whether a sample belongs to the stretch a state's "since" counts from. Below 1 is one stretch,
    as an incident is (history.py): an Outpost degraded at 20:30 and disconnected from 20:31 is
    "Disconnected since 20:30", the start of the incident the same page lists, so the two never
    disagree. Connected counts from the first sample at 1."""
    if state == CONNECTED:
        return classify(value) == CONNECTED
    return value < 1.0


def record_outpost_errors(session: Session, errors: Mapping[int, str | None], now: dt.datetime) -> None:
    """Set (or with None, clear) each Outpost's last polling problem (AccessDenied, no data...)."""
    outposts = _outposts_by_pk(session, list(errors))
    for pk, message in errors.items():
        outpost = outposts.get(pk)
        if outpost is None:
            continue
        if message is None:
            if outpost.last_error is not None:
                outpost.last_error = None
                outpost.last_error_at = None
        elif outpost.last_error != message or outpost.last_error_at is None:
            outpost.last_error = message
            outpost.last_error_at = now
    session.flush()


__all__ = [
    "CONNECTED",
    "DEGRADED",
    "DISCONNECTED",
    "STATES",
    "UNKNOWN",
    "WINDOWS",
    "RecordResult",
    "Uptime",
    "Vantage",
    "aws_vantage",
    "classify",
    "current_uptime",
    "derive_state",
    "forget_uptime",
    "fresh_uptime_clause",
    "record_outpost_errors",
    "record_samples",
    "refresh_states",
    "store_uptime",
    "uptime_bulk",
    "uptime_for",
]
