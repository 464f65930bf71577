"""The connectivity poller: every interval, ConnectedStatus for every Outpost, one region at a time.

Each region gets its own PollRun; one failing region does not stop the others. Each cycle re-reads
a trailing window and, after a gap, backfills from each Outpost's last stored sample (or from the
start of an earlier cycle's backfill window whose request failed: `Outpost.backfill_from`). Every
LIFELINE_POLL_HOLE_RECHECK_MINUTES, holes in the stored history (hours not fully known, an
Outpost that buffered while its link was down, a delayed publish) are asked for again, spending at
most LIFELINE_POLL_HOLE_REQUESTS requests, until CloudWatch's 15 days of one-minute data (or the
raw retention, if shorter) make them final. Other cycles cost ceil(N/500) requests.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.aws import AwsClients
from app.integrations.cloudwatch import (
    MAX_QUERIES_PER_REQUEST,
    FetchResult,
    OutpostSeries,
    fetch_connected_status,
)
from app.jobs import triggers
from app.metrics import CLOUDWATCH_REQUESTS, POLL_DURATION, POLL_ERRORS
from app.models.fleet import Outpost
from app.models.poll_run import PollRun
from app.services.connectivity import history, status
from app.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = "connectivity"
# A request covers at most this many periods per query: 500 queries x 180 points stays under
# GetMetricData's 100,800-datapoint page, so a backfill chunk is one request (3 h at 60 s, 15 h at 300 s).
POINTS_PER_QUERY = 180
_MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    period: int
    outpost_ids: tuple[str, ...]


@dataclass(frozen=True)
class RegionPoll:
    region: str
    outcome: str
    requests: int
    outposts: int
    samples_written: int
    error: str | None
    hole_requests: int = 0  # of `requests`, those spent re-asking for holes in stored history
    changed: tuple[int, ...] = ()  # Outposts (pk) whose state changed in this poll


class PollFailed(RuntimeError):
    """Raised after a cycle in which one or more regions failed (each was still recorded)."""


def _floor(ts: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(ts.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def _ceil(ts: dt.datetime, seconds: int) -> dt.datetime:
    floored = _floor(ts, seconds)
    return floored if floored == ts else floored + dt.timedelta(seconds=seconds)


def plan_windows(
    outposts: Sequence[tuple[str, dt.datetime | None]],
    now: dt.datetime,
    *,
    trailing: dt.timedelta,
    initial_backfill: dt.timedelta,
    max_backfill: dt.timedelta,
) -> list[Window]:
    """The GetMetricData windows for one region's cycle.

    Every Outpost gets the trailing window [end - trailing, end) (end = the current minute's start,
    so no partial minute is stored). An Outpost whose newest stored sample is older than that is
    re-read from that sample on (a never-polled one from `initial_backfill` before the window), at
    most `max_backfill` back: 60 s periods while within CloudWatch's 15 days of 1-minute data,
    300 s periods beyond, in chunks of at most POINTS_PER_QUERY periods that only include the
    Outposts that need them.
    """
    end = _floor(now, 60)
    trailing_start = end - trailing
    oldest_allowed = _ceil(now - max_backfill, 300)
    need: dict[str, dt.datetime] = {}
    for outpost_id, last_sample_at in outposts:
        since = last_sample_at if last_sample_at is not None else trailing_start - initial_backfill
        need[outpost_id] = max(since, oldest_allowed)
    windows = [Window(trailing_start, end, 60, tuple(outpost_id for outpost_id, _ in outposts))]
    # 60-second data exists for 15 days; keep an hour's margin for the time the requests take.
    one_minute_limit = _ceil(now - dt.timedelta(days=15) + dt.timedelta(hours=1), 3600)
    cursor = trailing_start
    while outposts and cursor > oldest_allowed:
        period = 60 if cursor > one_minute_limit else 300
        floor_limit = one_minute_limit if period == 60 else oldest_allowed
        start = max(cursor - dt.timedelta(seconds=period * POINTS_PER_QUERY), floor_limit)
        members = [outpost_id for outpost_id, since in need.items() if since < cursor]
        if not members:
            break
        earliest = min(need[outpost_id] for outpost_id in members)
        start = max(start, _floor(earliest, period))
        if start >= cursor:
            break
        windows.append(Window(start, cursor, period, tuple(members)))
        cursor = start
    return windows


_HOLE_CHUNK = dt.timedelta(seconds=60 * POINTS_PER_QUERY)


def plan_hole_windows(
    holes: Mapping[str, Sequence[dt.datetime]], *, end: dt.datetime, budget: int, rotation: int
) -> list[Window]:
    """At most `budget` one-request windows (60 s periods, 3 h, 500 Outposts) over the hole hours.

    Newest holes first; `rotation` (the re-check's number) shifts the starting chunk so that with
    more holes than budget every hole is asked for in turn.
    """
    by_chunk: dict[dt.datetime, set[str]] = {}
    for outpost_id, hours in holes.items():
        for hour in hours:
            by_chunk.setdefault(_floor(hour, int(_HOLE_CHUNK.total_seconds())), set()).add(outpost_id)
    keys = sorted(by_chunk, reverse=True)
    if keys:
        offset = rotation % len(keys)
        keys = keys[offset:] + keys[:offset]
    windows: list[Window] = []
    for key in keys:
        members = sorted(by_chunk[key])
        for offset in range(0, len(members), MAX_QUERIES_PER_REQUEST):
            if len(windows) >= budget:
                return windows
            windows.append(
                Window(
                    key,
                    min(key + _HOLE_CHUNK, end),
                    60,
                    tuple(members[offset : offset + MAX_QUERIES_PER_REQUEST]),
                )
            )
    return windows


def hole_recheck_due(previous_run: dt.datetime | None, now: dt.datetime, every_minutes: int) -> bool:
    """True in the first cycle of each `every_minutes` slot (stateless: compares with the last run)."""
    if previous_run is None:
        return True
    slot = every_minutes * 60
    return int(now.timestamp()) // slot != int(previous_run.timestamp()) // slot


def _hole_windows(
    session: Session,
    settings: Settings,
    region: str,
    outposts: Sequence[tuple[int, str, dt.datetime | None]],
    now: dt.datetime,
    trailing_start: dt.datetime,
) -> list[Window]:
    """This cycle's hole re-check windows (none when not due or no budget)."""
    if settings.poll_hole_requests <= 0 or not outposts:
        return []
    previous = session.scalar(
        select(PollRun.started_at)
        .where(PollRun.job == status.POLL_JOB, PollRun.scope == region)
        .order_by(PollRun.started_at.desc())
        .limit(1)
    )
    if not hole_recheck_due(previous, now, settings.poll_hole_recheck_minutes):
        return []
    # One-minute data lives 15 days in CloudWatch; past that (or past raw retention) a hole is final.
    final_before = now - min(dt.timedelta(days=15), dt.timedelta(days=settings.raw_retention_days))
    since = _ceil(final_before + dt.timedelta(hours=1), 3600)
    found = history.incomplete_hours(session, [pk for pk, _, _ in outposts], since, trailing_start)
    holes: dict[str, list[dt.datetime]] = {}
    for pk, outpost_id, last in outposts:
        # Hours after the newest sample are the ordinary backfill's, not holes.
        hours = [h for h in found.get(pk, ()) if last is not None and h + dt.timedelta(hours=1) <= last]
        if hours:
            holes[outpost_id] = hours
    rotation = int(now.timestamp()) // (settings.poll_hole_recheck_minutes * 60)
    return plan_hole_windows(holes, end=trailing_start, budget=settings.poll_hole_requests, rotation=rotation)


def poll_connectivity(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    now: dt.datetime | None = None,
    clients: AwsClients | None = None,
) -> list[RegionPoll]:
    """One cycle: every region with Outposts, each recorded as its own PollRun."""
    now = now or dt.datetime.now(dt.UTC)
    clients = clients or AwsClients.from_settings(settings)
    with session_scope(session_factory) as session:
        regions = sorted(set(session.scalars(select(Outpost.region).distinct())))
    results = []
    with POLL_DURATION.labels(job=JOB_ID).time():
        for region in regions:
            result = _poll_region(settings, session_factory, clients, region, now)
            results.append(result)
            if result.changed:
                triggers.outposts_changed(
                    settings, session_factory, result.changed, "ConnectedStatus changed"
                )
            CLOUDWATCH_REQUESTS.labels(region=region).inc(result.requests)
            if result.outcome != status.OUTCOME_OK:
                POLL_ERRORS.labels(job=JOB_ID, region=region, kind=result.outcome).inc()
    return results


def _poll_region(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clients: AwsClients,
    region: str,
    now: dt.datetime,
) -> RegionPoll:
    started = time.monotonic()
    trailing = dt.timedelta(minutes=settings.poll_trailing_window_minutes)
    with session_scope(session_factory) as session:
        # Each Outpost's history is complete up to its newest sample, or up to `backfill_from` when
        # an earlier cycle's backfill request failed after the trailing window moved that sample on.
        rows = [
            (pk, outpost_id, resume_from(last, backfill_from))
            for pk, outpost_id, last, backfill_from in session.execute(
                select(Outpost.id, Outpost.outpost_id, Outpost.last_sample_at, Outpost.backfill_from)
                .where(Outpost.region == region)
                .order_by(Outpost.outpost_id)
            )
        ]
        outposts = [(outpost_id, last) for _, outpost_id, last in rows]
        holes = _hole_windows(session, settings, region, rows, now, _floor(now, 60) - trailing)
        run = PollRun(job=status.POLL_JOB, scope=region, started_at=now, outcome="running")
        session.add(run)
        session.flush()
        run_id = run.id
    fetched: FetchResult | None = None
    try:
        windows = plan_windows(
            outposts,
            now,
            trailing=trailing,
            initial_backfill=dt.timedelta(hours=settings.poll_initial_backfill_hours),
            max_backfill=dt.timedelta(days=settings.poll_backfill_max_days),
        )
        fetched = fetch_connected_status(
            clients, region, [(w.start, w.end, w.period, w.outpost_ids) for w in [*windows, *holes]]
        )
        with session_scope(session_factory) as session:
            result = replace(_store(session, settings, fetched, region, now), hole_requests=len(holes))
            _mark_backfill(session, region, windows, fetched, {o: since for _, o, since in rows})
            run = session.get_one(PollRun, run_id)
            run.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
            run.outcome = result.outcome
            run.error = result.error
            run.requests = fetched.requests
            run.items = len(outposts)
        log.info(
            "connectivity %s: %s, %d Outposts, %d requests (%d of a budget of %d re-asking holes), "
            "%d samples written",
            region,
            result.outcome,
            len(outposts),
            fetched.requests,
            len(holes),
            settings.poll_hole_requests,
            result.samples_written,
        )
        return result
    except Exception as exc:
        log.exception("connectivity poll of %s failed", region)
        message = f"{type(exc).__name__}: {exc}"
        with session_scope(session_factory) as session:
            run = session.get_one(PollRun, run_id)
            run.finished_at = now + dt.timedelta(seconds=time.monotonic() - started)
            run.outcome = status.OUTCOME_ERROR
            run.error = message[:4000]
            run.requests = fetched.requests if fetched else 0
            run.items = len(outposts)
        return RegionPoll(
            region, status.OUTCOME_ERROR, fetched.requests if fetched else 0, len(outposts), 0, message
        )


def _store(
    session: Session, settings: Settings, fetched: FetchResult, region: str, now: dt.datetime
) -> RegionPoll:
    outposts = {
        outpost.outpost_id: outpost
        for outpost in session.scalars(select(Outpost).where(Outpost.region == region))
    }
    by_pk = {
        outposts[outpost_id].id: list(series.datapoints)
        for outpost_id, series in fetched.series.items()
        if outpost_id in outposts
    }
    recorded = status.record_samples(
        session, by_pk, frozen_before=now - dt.timedelta(days=settings.raw_retention_days)
    )
    errors: dict[int, str | None] = {}
    unreachable: list[Outpost] = []
    reachable: list[Outpost] = []
    for outpost_id, outpost in outposts.items():
        series = fetched.series.get(outpost_id)
        if series is None:
            reachable.append(outpost)
            continue
        if series.status == "unreachable":
            unreachable.append(outpost)
        else:
            reachable.append(outpost)
        message = _outpost_message(series, outpost)
        if series.status in ("ok", "no_data", "denied", "error"):
            errors[outpost.id] = message
    status.record_outpost_errors(session, errors, now)
    before = {outpost.id: outpost.state for outpost in outposts.values()}
    states = status.refresh_states(session, reachable, now)
    states.update(status.refresh_states(session, unreachable, now, reachable=False))
    # Uptime moves on every cycle (known time grows, or unknown time while unreachable): stored
    # here, with the samples, for readers until a missed cycle later.
    status.store_uptime(session, [o.id for o in outposts.values()], now, valid_for=uptime_valid_for(settings))
    changed = tuple(sorted(pk for pk, state in states.items() if before.get(pk) != state))
    if fetched.region_status == "ok":
        outcome = status.OUTCOME_PARTIAL if fetched.region_error else status.OUTCOME_OK
    elif fetched.region_status == "unreachable":
        outcome = status.OUTCOME_UNREACHABLE
    else:
        outcome = status.OUTCOME_ERROR
    return RegionPoll(
        region,
        outcome,
        fetched.requests,
        len(outposts),
        recorded.inserted + recorded.updated,
        fetched.region_error,
        changed=changed,
    )


def uptime_valid_for(settings: Settings) -> dt.timedelta:
    """How long readers may take the uptime a poll stored: two poll intervals and a minute, so one
    slow or missed cycle does not send every page back to summing rollups, and a stopped poller's
    figures are not shown as current for long."""
    return dt.timedelta(seconds=2 * settings.poll_interval_seconds + 60)


def resume_from(last_sample_at: dt.datetime | None, backfill_from: dt.datetime | None) -> dt.datetime | None:
    """Where an Outpost's ordinary backfill starts: its newest sample, or an earlier failed window."""
    if backfill_from is None or last_sample_at is None:
        return last_sample_at
    return min(last_sample_at, backfill_from)


def _mark_backfill(
    session: Session,
    region: str,
    windows: Sequence[Window],
    fetched: FetchResult,
    resumed: Mapping[str, dt.datetime | None],
) -> None:
    """Move each Outpost's `backfill_from` to where its history stopped being complete this cycle.

    History was complete up to `resumed` (where this cycle's ordinary windows started); a failed
    ordinary window [a, b) leaves [max(a, resumed), b) to ask again. The mark is cleared when every
    window succeeded, or when the newest sample did not move past it (the planner starts there
    anyway). Hole re-check windows (after the ordinary ones) keep their own schedule.
    """
    failed: dict[str, dt.datetime] = {}
    for outpost_id, indexes in fetched.incomplete.items():
        since = resumed.get(outpost_id)
        starts = [
            windows[i].start if since is None else max(windows[i].start, _floor(since, windows[i].period))
            for i in indexes
            if i < len(windows)
        ]
        if starts:
            failed[outpost_id] = min(starts)
    # Only Outposts whose mark may change: those marked before and those with a failed window.
    touched = select(Outpost).where(
        Outpost.region == region,
        or_(Outpost.backfill_from.is_not(None), Outpost.outpost_id.in_(failed)),
    )
    for outpost in session.scalars(touched):
        mark = failed.get(outpost.outpost_id)
        if mark is not None and (outpost.last_sample_at is None or mark >= outpost.last_sample_at):
            mark = None
        if outpost.backfill_from != mark:
            if mark is not None:
                log.warning(
                    "connectivity %s: %s incomplete from %s; the next cycle asks again",
                    region,
                    outpost.outpost_id,
                    f"{mark:%Y-%m-%d %H:%M}",
                )
            outpost.backfill_from = mark


def _outpost_message(series: OutpostSeries, outpost: Outpost) -> str | None:
    if series.status == "ok":
        return None
    if series.status == "no_data" and outpost.last_sample_at is not None:
        return (
            "No ConnectedStatus datapoints in this poll's window; the last one is from "
            f"{outpost.last_sample_at:%Y-%m-%d %H:%M} UTC. A disconnected Outpost publishes nothing "
            "until its link is back."
        )
    return series.message


def poll_region_now(settings: Settings, session_factory: sessionmaker[Session], region: str) -> RegionPoll:
    """One region's poll at once ("poll now" on an Outpost page), recorded as its own PollRun."""
    return _poll_region(
        settings, session_factory, AwsClients.from_settings(settings), region, dt.datetime.now(dt.UTC)
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """One poll cycle (used by `lifeline poll-once` and the scheduler); raises if a region failed."""
    results = poll_connectivity(settings, session_factory)
    failed = [r for r in results if r.outcome in (status.OUTCOME_ERROR, status.OUTCOME_UNREACHABLE)]
    if failed:
        raise PollFailed(
            "connectivity poll failed for "
            + "; ".join(f"{r.region}: {r.outcome} ({r.error})" for r in failed)
        )


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Poll every LIFELINE_POLL_INTERVAL_SECONDS, the first time right away."""
    scheduler.add_job(
        run_once,
        "interval",
        seconds=settings.poll_interval_seconds,
        args=(settings, session_factory),
        id=JOB_ID,
        name="poll ConnectedStatus",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
