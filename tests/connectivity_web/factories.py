"""Builders for connectivity rows: Outposts, samples, hourly rollups, incidents and poll runs.

They flush (never commit) so each test's rows vanish with its transaction; the live-server tests
pass a committing session instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.db import upsert
from app.integrations.cloudwatch import Datapoint
from app.models import ConnectedSample, HourlyRollup, Incident, Outpost, PollRun
from app.services.connectivity.status import record_samples

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
_counter = itertools.count(1)


def outpost_id(n: int | None = None) -> str:
    return f"op-{(n if n is not None else next(_counter)):017x}"


def make_outpost(
    session: Session,
    *,
    name: str | None = None,
    region: str = "us-west-2",
    state: str = "CONNECTED",
    state_since: dt.datetime | None = None,
    last_sample_at: dt.datetime | None = None,
    last_value: float | None = None,
    last_error: str | None = None,
    oid: str | None = None,
    **extra: object,
) -> Outpost:
    oid = oid or outpost_id()
    outpost = Outpost(
        outpost_id=oid,
        name=name or f"Outpost {oid[-4:]}",
        region=region,
        state=state,
        state_since=state_since,
        last_sample_at=last_sample_at,
        last_value=last_value
        if last_value is not None
        else {"CONNECTED": 1.0, "DISCONNECTED": 0.0}.get(state),
        last_error=last_error,
        last_error_at=NOW if last_error else None,
        **extra,
    )
    session.add(outpost)
    session.flush()
    return outpost


def add_samples(
    session: Session,
    outpost: Outpost,
    start: dt.datetime,
    values: Sequence[float | None],
    *,
    period: int = 60,
) -> None:
    """One sample per period from `start`; None leaves a gap (no datapoint).

    Written through the poller's own service, so hourly rollups, incidents and the Outpost's
    last_sample_at follow exactly as they would in production.
    """
    points = [
        Datapoint(ts=start + dt.timedelta(seconds=i * period), value=v, period=period)
        for i, v in enumerate(values)
        if v is not None
    ]
    record_samples(session, {outpost.id: points})
    session.flush()


def insert_raw_samples(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Bulk insert of sample rows without rollups or incidents (benchmark-sized seeding)."""
    if rows:
        session.execute(insert(ConnectedSample), list(rows))


def add_rollups(
    session: Session,
    outpost: Outpost,
    start_hour: dt.datetime,
    hours: Iterable[tuple[float, float] | None],
) -> None:
    """One rollup per hour from `start_hour`: (connected_seconds, known_seconds); None = no row.

    Hours that already have a rollup (made from samples by `add_samples`) are left as they are.
    """
    rows = []
    for i, pair in enumerate(hours):
        if pair is None:
            continue
        connected, known = pair
        avg = connected / known if known else None
        rows.append(
            {
                "outpost_pk": outpost.id,
                "hour": start_hour + dt.timedelta(hours=i),
                "connected_seconds": connected,
                "known_seconds": known,
                "min_value": 0.0 if connected < known else 1.0,
                "avg_value": avg,
                "samples": int(known // 60),
            }
        )
    upsert(session, HourlyRollup.__table__, rows, conflict_columns=("outpost_pk", "hour"))  # type: ignore[arg-type]
    session.flush()


def add_incident(
    session: Session,
    outpost: Outpost,
    started_at: dt.datetime,
    ended_at: dt.datetime | None,
    *,
    worst_value: float = 0.0,
    last_below_at: dt.datetime | None = None,
) -> Incident:
    incident = Incident(
        outpost_pk=outpost.id,
        started_at=started_at,
        ended_at=ended_at,
        worst_value=worst_value,
        last_below_at=last_below_at or ended_at or started_at,
    )
    session.add(incident)
    session.flush()
    return incident


def add_poll_run(
    session: Session,
    *,
    finished_at: dt.datetime,
    outcome: str = "ok",
    error: str | None = None,
    duration: float = 2.0,
    job: str = "connectivity",
    requests: int = 1,
    items: int = 10,
) -> PollRun:
    run = PollRun(
        job=job,
        started_at=finished_at - dt.timedelta(seconds=duration),
        finished_at=finished_at,
        outcome=outcome,
        error=error,
        requests=requests,
        items=items,
    )
    session.add(run)
    session.flush()
    return run
