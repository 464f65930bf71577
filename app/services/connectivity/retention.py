"""Retention rules for connectivity history and poll runs. Flush, never commit."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Delete, delete, select
from sqlalchemy.orm import Session

from app.models.connectivity import (
    ConnectedSample,
    DailyRollup,
    HalfHourRollup,
    HourlyRollup,
    Incident,
    UptimeWindow,
)
from app.models.poll_run import PollRun
from app.models.probe import ProbeResult, SiteStretch
from app.services.connectivity.history import (
    day_floor,
    half_hour_floor,
    rebuild_hour_rollups,
    update_daily_rollups,
)


@dataclass(frozen=True)
class RetentionResult:
    samples_deleted: int
    rollups_rebuilt: int
    rollups_deleted: int
    incidents_deleted: int
    poll_runs_deleted: int
    site_stretches_deleted: int = 0
    probe_results_deleted: int = 0

    @property
    def total(self) -> int:
        return (
            self.samples_deleted
            + self.rollups_deleted
            + self.incidents_deleted
            + self.poll_runs_deleted
            + self.site_stretches_deleted
            + self.probe_results_deleted
        )


def _hour(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _delete(session: Session, stmt: Delete) -> int:
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def apply_retention(
    session: Session,
    now: dt.datetime,
    *,
    raw_days: int,
    rollup_days: int,
    poll_run_days: int,
    keep_run_id: int | None = None,
) -> RetentionResult:
    """Delete raw samples older than `raw_days` (after making sure each of their hours has a complete
    rollup) with their half-hour rollups; hourly and daily rollups and closed incidents older than
    `rollup_days`; poll runs older than `poll_run_days`.

    The site view keeps the same horizon as CloudWatch's: stretches that ended before `rollup_days`
    go (the one that lasts stays), and a probe result not refreshed for `raw_days` (a vantage renamed
    or retired, a region no longer in the fleet) goes; live probes upsert theirs every cycle.

    An incident still open is never deleted, whatever its age.
    """
    raw_cutoff = now - dt.timedelta(days=raw_days)
    counts: Counter[tuple[int, dt.datetime]] = Counter()
    rows = session.execute(
        select(ConnectedSample.outpost_pk, ConnectedSample.ts)
        .where(ConnectedSample.ts < raw_cutoff)
        .execution_options(yield_per=5000)
    )
    for pk, ts in rows:
        counts[(pk, _hour(ts))] += 1
    rebuilt = 0
    if counts:
        rolled = {
            (pk, hour): samples
            for pk, hour, samples in session.execute(
                select(HourlyRollup.outpost_pk, HourlyRollup.hour, HourlyRollup.samples).where(
                    HourlyRollup.hour >= min(hour for _, hour in counts),
                    HourlyRollup.hour < raw_cutoff,
                )
            )
        }
        # A rollup counting fewer samples than the hour holds was never brought up to date (data
        # written by something other than record_samples): rebuild it before the raw data goes.
        stale = [key for key, count in counts.items() if rolled.get(key, 0) < count]
        rebuilt = rebuild_hour_rollups(session, stale)
    samples_deleted = _delete(session, delete(ConnectedSample).where(ConnectedSample.ts < raw_cutoff))
    # Half-hour rollups only feed the 24-hour strip: they go with the raw samples they are made of
    # (whole half-hours before the cut-off; the one it falls in keeps its row, as an hour does).
    _delete(session, delete(HalfHourRollup).where(HalfHourRollup.start < half_hour_floor(raw_cutoff)))

    rollup_cutoff = now - dt.timedelta(days=rollup_days)
    rollups_deleted = _delete(session, delete(HourlyRollup).where(HourlyRollup.hour < rollup_cutoff))
    # The daily rollups follow the hourly ones: whole days before the cut-off go, and the day the
    # cut-off falls in is recomputed from the hours that remain (so both sum to the same figure).
    cutoff_day = day_floor(rollup_cutoff)
    _delete(session, delete(DailyRollup).where(DailyRollup.day < cutoff_day))
    if cutoff_day < rollup_cutoff:
        boundary = session.scalars(select(DailyRollup.outpost_pk).where(DailyRollup.day == cutoff_day)).all()
        update_daily_rollups(session, {(pk, cutoff_day) for pk in boundary})
    incidents_deleted = _delete(
        session, delete(Incident).where(Incident.ended_at.is_not(None), Incident.ended_at < rollup_cutoff)
    )

    stretches_deleted = _delete(
        session,
        delete(SiteStretch).where(SiteStretch.ended_at.is_not(None), SiteStretch.ended_at < rollup_cutoff),
    )
    probes_deleted = _delete(session, delete(ProbeResult).where(ProbeResult.checked_at < raw_cutoff))

    if rebuilt or samples_deleted or rollups_deleted:
        # What a window sums may have changed (a rebuilt rollup, a partial hour now prorated from
        # its rollup): the next poll stores the uptime again, readers compute it until then.
        _delete(session, delete(UptimeWindow))

    run_cutoff = now - dt.timedelta(days=poll_run_days)
    runs = delete(PollRun).where(PollRun.started_at < run_cutoff)
    if keep_run_id is not None:
        runs = runs.where(PollRun.id != keep_run_id)
    poll_runs_deleted = _delete(session, runs)
    session.flush()
    return RetentionResult(
        samples_deleted=samples_deleted,
        rollups_rebuilt=rebuilt,
        rollups_deleted=rollups_deleted,
        incidents_deleted=incidents_deleted,
        poll_runs_deleted=poll_runs_deleted,
        site_stretches_deleted=stretches_deleted,
        probe_results_deleted=probes_deleted,
    )
