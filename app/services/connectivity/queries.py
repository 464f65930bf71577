"""Read side of connectivity for the pages and the API: the fleet list with filters, 24-hour status
strips, timelines, incidents and samples. Uptime and the dashboard's vantage come from
app.services.connectivity.status (the write side owns their definition). Every query is bulk.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import time_bucket
from app.models import (
    Cluster,
    ConnectedSample,
    DailyRollup,
    HalfHourRollup,
    HourlyRollup,
    Incident,
    Outpost,
    PollRun,
)
from app.services.connectivity import paging
from app.services.connectivity.spans import dated_span
from app.services.connectivity.status import STATES, WINDOWS, Uptime, Vantage, aws_vantage, current_uptime
from app.services.fleet.rules import OUTPOST_ID_RE

# Worst first: the default sort puts the Outposts that need attention on top.
SEVERITY = {"DISCONNECTED": 0, "DEGRADED": 1, "UNKNOWN": 2, "CONNECTED": 3}

# Timelines up to this length read raw samples; longer ones read hourly rollups, and those with
# day-wide columns the daily rollups (a fixed row per column, whatever the history).
RAW_WINDOW_LIMIT = dt.timedelta(hours=24)
DAY_SECONDS = 86400

# Timeline ranges: (length, bucket width). Buckets are aligned to multiples of their width.
RANGES: dict[str, tuple[dt.timedelta, int]] = {
    "6h": (dt.timedelta(hours=6), 60),
    "24h": (dt.timedelta(hours=24), 300),
    "7d": (dt.timedelta(days=7), 3600),
    "30d": (dt.timedelta(days=30), DAY_SECONDS),
    "90d": (dt.timedelta(days=90), DAY_SECONDS),
}
STRIP_BUCKETS = 48
STRIP_BUCKET_SECONDS = 1800

SORTS = ("state", "name", "region", "since", "age", "uptime")


def normalize_outpost_id(raw: str) -> str | None:
    """The canonical Outpost ID, or None when `raw` is not `op-` + 17 hex digits (reads accept
    upper case: a pasted ID should find its Outpost)."""
    value = raw.strip().lower()
    return value if OUTPOST_ID_RE.match(value) else None


# ---------------------------------------------------------------- value objects


@dataclass(frozen=True)
class Bucket:
    """Aggregated connectivity over [start, end): how much was known, connected, and the worst value."""

    start: dt.datetime
    end: dt.datetime
    known_seconds: float = 0.0
    connected_seconds: float = 0.0
    min_value: float | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def unknown_seconds(self) -> float:
        return max(0.0, self.seconds - self.known_seconds)

    @property
    def state(self) -> str:
        """Problems are never hidden by gaps, and a mostly unknown bucket is never called connected."""
        if self.min_value is not None and self.min_value <= 0:
            return "disconnected"
        if self.min_value is not None and self.min_value < 1:
            return "degraded"
        if self.known_seconds < self.seconds / 2:
            return "unknown"
        return "connected"


@dataclass(frozen=True)
class StripSegment:
    """A run of equal-state strip buckets, rendered as one span with a tooltip."""

    state: str
    start: dt.datetime
    end: dt.datetime
    width: int
    known_seconds: float
    connected_seconds: float

    @property
    def css(self) -> str:
        return {"connected": "c", "degraded": "d", "disconnected": "x", "unknown": "u"}[self.state]

    @property
    def title(self) -> str:
        unknown = max(0.0, (self.end - self.start).total_seconds() - self.known_seconds)
        span = f"{dated_span(self.start, self.end)}: {self.state}"
        if self.known_seconds > 0:
            span += f", {100 * self.connected_seconds / self.known_seconds:.1f}% connected of known time"
        if unknown >= 60:
            span += f", {int(unknown // 60)} min unknown"
        return span


@dataclass(frozen=True)
class Timeline:
    range_key: str
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int
    buckets: list[Bucket]
    source: str  # "samples", "rollups" (hourly) or "daily"


@dataclass(frozen=True)
class OverviewRow:
    outpost: Outpost
    uptime: dict[str, Uptime]
    strip: list[StripSegment]
    # When this Outpost's recorded history begins (its first hourly rollup), None without data.
    data_since: dt.datetime | None = None


@dataclass(frozen=True)
class Overview:
    rows: list[OverviewRow]
    counts: dict[str, int]
    regions: list[str]
    total: int
    last_run: PollRun | None
    last_ok_run: PollRun | None
    errors: int = 0
    filters: dict[str, str] = field(default_factory=dict)
    # Server-side paging: Outposts matching the filters, and which slice of them `rows` is.
    matching: int = 0
    page: int = 1
    page_size: int = 0
    # Regions with their counts per state, worst first (the default grouping; empty when filtered
    # to one region or with group=none).
    groups: list[paging.Group] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.page_size)) if self.page_size else 1

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.page_size + len(self.rows)


@dataclass(frozen=True)
class IncidentView:
    incident: Incident
    duration_seconds: float

    @property
    def ongoing(self) -> bool:
        return self.incident.ended_at is None


# ---------------------------------------------------------------- fleet


def list_outposts(
    session: Session, *, state: str | None = None, region: str | None = None, sort: str = "state"
) -> list[Outpost]:
    """Outposts filtered by state and region, sorted by a key in SORTS (a leading '-' reverses)."""
    stmt = select(Outpost)
    if state:
        stmt = stmt.where(Outpost.state == state)
    if region:
        stmt = stmt.where(Outpost.region == region)
    outposts = list(session.scalars(stmt))
    return _sorted(outposts, sort, {})


def _sorted(outposts: list[Outpost], sort: str, uptime: dict[int, dict[str, Uptime]]) -> list[Outpost]:
    key = sort.lstrip("-")
    reverse = sort.startswith("-")
    far_past = dt.datetime.min.replace(tzinfo=dt.UTC)

    def sort_key(o: Outpost) -> tuple[object, ...]:
        if key == "name":
            return (o.name.lower(), o.outpost_id)
        if key == "region":
            return (o.region, o.name.lower())
        if key == "since":
            return (o.state_since or far_past, o.name.lower())
        if key == "age":
            # Oldest datapoint (or none at all) first: those are the ones to look at.
            return (o.last_sample_at or far_past, o.name.lower())
        if key == "uptime":
            ratio = uptime.get(o.id, {}).get("24h")
            value = ratio.ratio if ratio and ratio.ratio is not None else -1.0
            return (value, o.name.lower())
        return (SEVERITY.get(o.state, 9), o.name.lower())

    return sorted(outposts, key=sort_key, reverse=reverse)


def count_by_state(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state, count in session.execute(select(Outpost.state, func.count()).group_by(Outpost.state)):
        counts[state] = counts.get(state, 0) + int(count)
    return counts


def list_regions(session: Session) -> list[str]:
    return list(session.scalars(select(Outpost.region).distinct().order_by(Outpost.region)))


def latest_poll_runs(session: Session, job: str = "connectivity") -> tuple[PollRun | None, PollRun | None]:
    """The latest finished run of `job`, and the latest one that succeeded."""
    base = select(PollRun).where(PollRun.job == job, PollRun.finished_at.is_not(None))
    last = session.scalar(base.order_by(PollRun.finished_at.desc(), PollRun.id.desc()).limit(1))
    if last is None or last.outcome == "ok":
        return last, last
    last_ok = session.scalar(
        base.where(PollRun.outcome == "ok").order_by(PollRun.finished_at.desc(), PollRun.id.desc()).limit(1)
    )
    return last, last_ok


# ---------------------------------------------------------------- uptime


def _floor(moment: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(moment.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)


def _ceil(moment: dt.datetime, seconds: int) -> dt.datetime:
    floored = _floor(moment, seconds)
    return floored if floored == moment else floored + dt.timedelta(seconds=seconds)


def uptime_by_outpost(
    session: Session,
    outpost_pks: Sequence[int],
    now: dt.datetime,
    windows: Iterable[str] = tuple(WINDOWS),
    *,
    exclude_drills: bool = True,
) -> dict[int, dict[str, Uptime]]:
    """Uptime of many Outposts per window: the rows the last poll stored (one per Outpost and
    window), computed from the rollups where there are none valid at `now`. Drill time is left out
    by default and reported as each window's `drill_seconds` (issue 17)."""
    found = current_uptime(session, outpost_pks, list(windows), now)
    if not exclude_drills:
        return found
    from app.services.drills.uptime import exclude_drill_time

    return exclude_drill_time(session, found, now)  # type: ignore[return-value]


# ---------------------------------------------------------------- buckets (strips and timelines)


def _raw_buckets(
    session: Session,
    pks: Sequence[int],
    origin: dt.datetime,
    end: dt.datetime,
    seconds: int,
    since: dt.datetime | None = None,
) -> dict[int, dict[int, tuple[float, float, float]]]:
    """{pk: {bucket index: (known, connected, min value)}} from raw samples (from `since`, default
    `origin`), aggregated in SQL."""
    bucket = time_bucket(ConnectedSample.ts, int(origin.timestamp()), seconds)
    rows = session.execute(
        select(
            ConnectedSample.outpost_pk,
            bucket,
            func.sum(ConnectedSample.period_seconds),
            func.sum(ConnectedSample.value * ConnectedSample.period_seconds),
            func.min(ConnectedSample.value),
        )
        .where(
            ConnectedSample.outpost_pk.in_(list(pks)),
            ConnectedSample.ts >= (since or origin),
            ConnectedSample.ts < end,
        )
        .group_by(ConnectedSample.outpost_pk, bucket)
    ).all()
    out: dict[int, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    for pk, index, known, conn, low in rows:
        out[pk][int(index)] = (float(known or 0), float(conn or 0), float(low))
    return out


def _rollup_buckets(
    session: Session, pk: int, origin: dt.datetime, end: dt.datetime, seconds: int
) -> dict[int, tuple[float, float, float]]:
    bucket = time_bucket(HourlyRollup.hour, int(origin.timestamp()), seconds)
    rows = session.execute(
        select(
            bucket,
            func.sum(HourlyRollup.known_seconds),
            func.sum(HourlyRollup.connected_seconds),
            func.min(HourlyRollup.min_value),
        )
        .where(HourlyRollup.outpost_pk == pk, HourlyRollup.hour >= origin, HourlyRollup.hour < end)
        .group_by(bucket)
    ).all()
    return {
        int(index): (float(known or 0), float(conn or 0), float(low) if low is not None else 1.0)
        for index, known, conn, low in rows
        if known
    }


def _stored_buckets(
    rows: Iterable[tuple[Any, ...]], origin: dt.datetime, seconds: int
) -> dict[int, dict[int, tuple[float, float, float]]]:
    """{pk: {bucket index: (known, connected, min value)}} from pre-bucketed rollup rows
    (pk, start, known, connected, min value), each exactly one bucket wide."""
    out: dict[int, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    for pk, start, known, conn, low in rows:
        if known:
            index = int((start - origin).total_seconds()) // seconds
            out[pk][index] = (float(known), float(conn or 0), float(low) if low is not None else 1.0)
    return out


def _merge(a: tuple[float, float, float] | None, b: tuple[float, float, float]) -> tuple[float, float, float]:
    if a is None:
        return b
    return (a[0] + b[0], a[1] + b[1], min(a[2], b[2]))


def _make_buckets(
    origin: dt.datetime,
    count: int,
    seconds: int,
    now: dt.datetime,
    data: dict[int, tuple[float, float, float]],
) -> list[Bucket]:
    buckets = []
    for index in range(count):
        start = origin + dt.timedelta(seconds=index * seconds)
        # The current bucket ends now: its future is neither known nor unknown.
        end = min(start + dt.timedelta(seconds=seconds), now)
        if end <= start:
            break
        known, conn, low = data.get(index, (0.0, 0.0, None))  # type: ignore[arg-type]
        span = (end - start).total_seconds()
        buckets.append(Bucket(start, end, min(known, span), min(conn, span), low))
    return buckets


def data_since(session: Session, outpost_pks: Sequence[int]) -> dict[int, dt.datetime]:
    """The start of each Outpost's recorded history (its first hourly rollup with known time), in
    one query: per Outpost an index seek on (outpost_pk, hour) that stops at its first row, so the
    cost follows the Outposts asked, not the years of history each has (a GROUP BY min() read
    every rollup of every Outpost shown)."""
    if not outpost_pks:
        return {}
    first = (
        select(HourlyRollup.hour)
        .where(HourlyRollup.outpost_pk == Outpost.id, HourlyRollup.known_seconds > 0)
        .order_by(HourlyRollup.hour)
        .limit(1)
        .scalar_subquery()
    )
    stmt = select(Outpost.id, first).where(Outpost.id.in_(list(outpost_pks)))
    return {pk: hour for pk, hour in session.execute(stmt) if hour is not None}


def status_strips(
    session: Session, outpost_pks: Sequence[int], now: dt.datetime
) -> dict[int, list[StripSegment]]:
    """The last 24 hours of each Outpost as STRIP_BUCKETS buckets, merged into equal-state runs.

    One query over the half-hour rollups (kept when samples land, the current half-hour included)
    for every Outpost asked: at most 48 rows each, never the raw samples.
    """
    end = _ceil(now, STRIP_BUCKET_SECONDS)
    origin = end - dt.timedelta(seconds=STRIP_BUCKETS * STRIP_BUCKET_SECONDS)
    data: dict[int, dict[int, tuple[float, float, float]]] = {}
    if outpost_pks:
        half = HalfHourRollup
        rows = session.execute(
            select(
                half.outpost_pk, half.start, half.known_seconds, half.connected_seconds, half.min_value
            ).where(half.outpost_pk.in_(list(outpost_pks)), half.start >= origin, half.start < end)
        )
        data = _stored_buckets(rows, origin, STRIP_BUCKET_SECONDS)
    strips = {}
    for pk in outpost_pks:
        buckets = _make_buckets(origin, STRIP_BUCKETS, STRIP_BUCKET_SECONDS, now, data.get(pk, {}))
        strips[pk] = merge_segments(buckets)
    return strips


def merge_segments(buckets: Sequence[Bucket]) -> list[StripSegment]:
    segments: list[StripSegment] = []
    for b in buckets:
        state = b.state
        if segments and segments[-1].state == state:
            last = segments[-1]
            segments[-1] = StripSegment(
                state,
                last.start,
                b.end,
                last.width + 1,
                last.known_seconds + b.known_seconds,
                last.connected_seconds + b.connected_seconds,
            )
        else:
            segments.append(StripSegment(state, b.start, b.end, 1, b.known_seconds, b.connected_seconds))
    return segments


def timeline(session: Session, outpost: Outpost, range_key: str, now: dt.datetime) -> Timeline:
    """Buckets for the Outpost page's chart: raw samples up to 24 h, hourly rollups for 7 d, daily
    rollups (one row per column, the current day included) for 30 d and 90 d."""
    length, seconds = RANGES[range_key]
    end = _ceil(now, seconds)
    count = int(length.total_seconds() // seconds)
    origin = end - dt.timedelta(seconds=count * seconds)
    if seconds == DAY_SECONDS:
        day = DailyRollup
        rows = session.execute(
            select(day.outpost_pk, day.day, day.known_seconds, day.connected_seconds, day.min_value).where(
                day.outpost_pk == outpost.id, day.day >= origin, day.day < end
            )
        )
        data = _stored_buckets(rows, origin, seconds).get(outpost.id, {})
        source = "daily"
    elif length <= RAW_WINDOW_LIMIT:
        data = _raw_buckets(session, [outpost.id], origin, end, seconds).get(outpost.id, {})
        source = "samples"
    else:
        hour = _floor(now, 3600)
        data = _rollup_buckets(session, outpost.id, origin, hour, seconds)
        # The current hour may not be rolled up yet: read it from raw samples.
        recent = _raw_buckets(session, [outpost.id], origin, end, seconds, since=hour).get(outpost.id, {})
        for index, value in recent.items():
            data[index] = _merge(data.get(index), value)
        source = "rollups"
    return Timeline(range_key, origin, now, seconds, _make_buckets(origin, count, seconds, now, data), source)


# ---------------------------------------------------------------- overview


def overview(
    session: Session,
    now: dt.datetime,
    *,
    state: str | None = None,
    region: str | None = None,
    sort: str = "state",
    windows: Sequence[str] = ("24h", "7d", "30d"),
    page: int = 1,
    page_size: int = 50,
    group: str = "region",
) -> Overview:
    """What the overview shows: counts per state and per region (one GROUP BY each) and one page of
    rows, sorted and limited in SQL, with uptime and strips read for that page only.

    Sorting by uptime joins the uptime rows the last poll stored (the few Outposts with drill time
    left out are sorted on their figure without it); only when a matching Outpost has no valid
    stored row does it compute every matching Outpost's uptime before it cuts the page.
    """
    offset = (max(1, page) - 1) * page_size
    if sort.lstrip("-") == "uptime":
        shown, matching = _page_by_uptime(session, now, state, region, sort, offset, page_size)
        uptime = uptime_by_outpost(session, [o.id for o in shown], now, windows)
    else:
        found = paging.page_outposts(
            session, state=state, region=region, sort=sort, offset=offset, limit=page_size
        )
        shown, matching = found.outposts, found.total
        uptime = uptime_by_outpost(session, [o.id for o in shown], now, windows)
    strips = status_strips(session, [o.id for o in shown], now)
    since = data_since(session, [o.id for o in shown])
    counts = count_by_state(session)
    last, last_ok = latest_poll_runs(session)
    groups = paging.groups_by_region(session, state=state) if group == "region" and not region else []
    return Overview(
        rows=[OverviewRow(o, uptime[o.id], strips[o.id], since.get(o.id)) for o in shown],
        counts=counts,
        regions=list_regions(session),
        total=sum(counts.values()),
        last_run=last,
        last_ok_run=last_ok,
        errors=paging.count_matching(session, state=state, region=region, with_errors=True),
        filters={"state": state or "", "region": region or "", "sort": sort},
        matching=matching,
        page=max(1, page),
        page_size=page_size,
        groups=groups,
    )


def _page_by_uptime(
    session: Session,
    now: dt.datetime,
    state: str | None,
    region: str | None,
    sort: str,
    offset: int,
    limit: int,
) -> tuple[list[Outpost], int]:
    from app.services.drills.uptime import outposts_with_drills

    descending = sort.startswith("-")
    drilled = outposts_with_drills(session, now - WINDOWS["24h"], now)
    without_drills = uptime_by_outpost(session, drilled, now, ["24h"])
    found = paging.page_by_uptime(
        session,
        now=now,
        state=state,
        region=region,
        descending=descending,
        offset=offset,
        limit=limit,
        ratios={pk: by_window["24h"].ratio for pk, by_window in without_drills.items()},
    )
    if found is not None:
        return found.outposts, found.total
    candidates = list_outposts(session, state=state, region=region, sort="name")
    all_uptime = uptime_by_outpost(session, [o.id for o in candidates], now, ["24h"])
    ordered = paging.sort_by_uptime(candidates, all_uptime, descending)  # type: ignore[arg-type]
    return ordered[offset : offset + limit], len(candidates)


def data_fingerprint(session: Session) -> tuple[object, ...]:
    """Changes whenever a poll or a fleet edit (an Outpost's or a cluster's) changes what the overview
    and the cut-off banner show (their cache key)."""
    fleet = session.execute(select(func.max(Outpost.updated_at), func.count(Outpost.id))).one()
    clusters = session.execute(select(func.max(Cluster.updated_at), func.count(Cluster.id))).one()
    return (poll_runs_marker(session), *fleet, *clusters)


# ---------------------------------------------------------------- incidents and samples


def list_incidents(
    session: Session,
    outpost_pk: int,
    now: dt.datetime,
    *,
    limit: int = 200,
    before: dt.datetime | None = None,
) -> list[IncidentView]:
    """Newest first (started before `before`, when given: the keyset of the next page); an
    ongoing incident's duration runs to its last sample below 1."""
    stmt = select(Incident).where(Incident.outpost_pk == outpost_pk)
    if before is not None:
        stmt = stmt.where(Incident.started_at < before)
    rows = session.scalars(stmt.order_by(Incident.started_at.desc()).limit(limit))
    views = []
    for incident in rows:
        end = incident.ended_at or max(incident.last_below_at, incident.started_at)
        views.append(IncidentView(incident, (end - incident.started_at).total_seconds()))
    return views


def iter_samples(
    session: Session, outpost_pk: int, start: dt.datetime, end: dt.datetime, *, chunk: int = 2000
) -> Iterator[ConnectedSample]:
    """Samples in [start, end), oldest first, fetched in chunks (for streaming exports)."""
    stmt = (
        select(ConnectedSample)
        .where(
            ConnectedSample.outpost_pk == outpost_pk, ConnectedSample.ts >= start, ConnectedSample.ts < end
        )
        .order_by(ConnectedSample.ts)
        .execution_options(yield_per=chunk)
    )
    yield from session.scalars(stmt)


def poll_runs_marker(session: Session, depth: int = 32) -> tuple[tuple[int, str], ...]:
    """(id, outcome) of the newest connectivity runs: changes when a run starts or finishes
    (one run per region per cycle, so `depth` covers that many regions)."""
    rows = session.execute(
        select(PollRun.id, PollRun.outcome)
        .where(PollRun.job == "connectivity")
        .order_by(PollRun.id.desc())
        .limit(depth)
    )
    return tuple((int(run_id), str(outcome)) for run_id, outcome in rows)


def dashboard_vantage(session: Session, now: dt.datetime) -> Vantage:
    """Can this dashboard reach AWS (from the connectivity poll runs)?"""
    return aws_vantage(session, now)
