"""Drill time kept out of uptime and incident figures, and shown beside them (never silently).

A drill's window is [started_at, ended_at or now). Inside it the connected and known seconds are
taken from the raw samples (clipped to the window) and removed from each uptime window; the drill
time itself is reported as `drill_seconds`. An incident that overlaps a drill window is a drill
incident: listed with its mark, not counted among the incidents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models import ConnectedSample, Drill, DrillEvent

Window = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class DrillWindow:
    drill_id: int
    title: str
    start: dt.datetime
    end: dt.datetime
    state: str


def marker(session: Session) -> tuple[object, ...]:
    """Changes when a drill is planned, started, changed or ended (each writes a drill event): a
    cache key for what follows drills (the Outpost page's lane, uptime's drill exclusion)."""
    row = session.execute(
        select(
            select(func.max(Drill.id)).scalar_subquery(), select(func.max(DrillEvent.id)).scalar_subquery()
        )
    ).one()
    return (row[0], row[1])


def drill_windows(
    session: Session, outpost_pks: Sequence[int], now: dt.datetime, *, excluded_only: bool = True
) -> dict[int, list[DrillWindow]]:
    """The windows of drills that ran (running, ended, aborted) per Outpost, oldest first."""
    if not outpost_pks:
        return {}
    stmt = select(Drill).where(Drill.outpost_pk.in_(list(outpost_pks)), Drill.started_at.is_not(None))
    if excluded_only:
        stmt = stmt.where(Drill.exclude_from_uptime.is_(True))
    found: dict[int, list[DrillWindow]] = defaultdict(list)
    for drill in session.scalars(stmt.order_by(Drill.started_at)):
        assert drill.started_at is not None
        end = drill.ended_at or now
        if end > drill.started_at:
            found[drill.outpost_pk].append(
                DrillWindow(drill.id, drill.title, drill.started_at, min(end, now), drill.state)
            )
    return dict(found)


def outposts_with_drills(session: Session, start: dt.datetime, now: dt.datetime) -> list[int]:
    """The Outposts with a drill whose time is left out of uptime inside [start, now): the few whose
    stored uptime is not what readers show (one query on the drills)."""
    stmt = (
        select(Drill.outpost_pk)
        .where(
            Drill.exclude_from_uptime.is_(True),
            Drill.started_at.is_not(None),
            Drill.started_at < now,
            or_(Drill.ended_at.is_(None), Drill.ended_at > start),
        )
        .distinct()
    )
    return list(session.scalars(stmt))


def _merged(windows: Sequence[Window]) -> list[Window]:
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def exclude_drill_time(
    session: Session, uptime: Mapping[int, Mapping[str, object]], now: dt.datetime
) -> dict[int, dict[str, object]]:
    """Each Uptime with the drill windows inside it removed (connected, known and unknown time),
    and `drill_seconds` set; Outposts without drills are returned unchanged."""
    windows = drill_windows(session, list(uptime), now)
    result: dict[int, dict[str, object]] = {pk: dict(by_window) for pk, by_window in uptime.items()}
    for pk, drills in windows.items():
        spans = _merged([(w.start, w.end) for w in drills])
        lo = min(s for s, _ in spans)
        samples = session.execute(
            select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds).where(
                ConnectedSample.outpost_pk == pk,
                ConnectedSample.ts >= lo - dt.timedelta(minutes=5),
                ConnectedSample.ts < max(e for _, e in spans),
            )
        ).all()
        for name, value in uptime[pk].items():
            start, end = value.start, value.end  # type: ignore[attr-defined]
            drill_s = connected = known = 0.0
            for s, e in spans:
                a, b = max(s, start), min(e, end)
                if b <= a:
                    continue
                drill_s += (b - a).total_seconds()
                for ts, v, period in samples:
                    overlap = (min(ts + dt.timedelta(seconds=period), b) - max(ts, a)).total_seconds()
                    if overlap > 0:
                        known += overlap
                        connected += v * overlap
            if drill_s <= 0:
                continue
            old = value
            new_known = max(0.0, old.known_seconds - known)  # type: ignore[attr-defined]
            result[pk][name] = dataclasses.replace(
                old,  # type: ignore[type-var]
                connected_seconds=min(max(0.0, old.connected_seconds - connected), new_known),  # type: ignore[attr-defined]
                known_seconds=new_known,
                unknown_seconds=max(0.0, old.unknown_seconds - (drill_s - known)),  # type: ignore[attr-defined]
                drill_seconds=drill_s,
            )
    return result


def drill_incident_ids(
    session: Session, outpost_pk: int, incidents: Sequence[Any], now: dt.datetime
) -> set[int]:
    """The incidents (IncidentView or Incident) that overlap a drill window of the Outpost."""
    spans = [(w.start, w.end) for w in drill_windows(session, [outpost_pk], now).get(outpost_pk, [])]
    found = set()
    for view in incidents:
        incident = getattr(view, "incident", view)
        start = incident.started_at
        end = incident.ended_at or now
        if any(start < e and end > s for s, e in spans):
            found.add(incident.id)
    return found


@dataclass(frozen=True)
class LaneSegment:
    drill_id: int
    title: str
    start: dt.datetime
    end: dt.datetime
    left: float  # percent of the lane from its start
    width: float  # percent of the lane
    state: str


def drill_lane(session: Session, outpost_pk: int, start: dt.datetime, end: dt.datetime) -> list[LaneSegment]:
    """The drills inside [start, end) as positioned segments, for the Outpost timeline."""
    total = (end - start).total_seconds() or 1.0
    lane = []
    for w in drill_windows(session, [outpost_pk], end, excluded_only=False).get(outpost_pk, []):
        a, b = max(w.start, start), min(w.end, end)
        if b <= a:
            continue
        lane.append(
            LaneSegment(
                w.drill_id,
                w.title,
                a,
                b,
                100 * (a - start).total_seconds() / total,
                max(0.4, 100 * (b - a).total_seconds() / total),
                w.state,
            )
        )
    return lane
