"""Prometheus metrics: the poller's own instruments, and a collector that reads the fleet's current
state from the database at scrape time (so every web replica reports the same numbers).

The poller (app/jobs/connectivity.py) observes POLL_DURATION and increments POLL_ERRORS and
CLOUDWATCH_REQUESTS; they live in the process that runs the scheduler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Outpost, PollRun, ProbeResult, SiteView

STATES = ("CONNECTED", "DEGRADED", "DISCONNECTED", "UNKNOWN")

POLL_DURATION = Histogram(
    "lifeline_poll_duration_seconds",
    "Wall time of one poll cycle of a background job (connectivity: all regions).",
    ["job"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
POLL_ERRORS = Counter(
    "lifeline_poll_errors_total",
    "Poll runs that did not end ok, by job, region and kind (the outcome: partial, error, unreachable).",
    ["job", "region", "kind"],
)
CLOUDWATCH_REQUESTS = Counter(
    "lifeline_cloudwatch_requests_total",
    "GetMetricData requests sent (one per 500 Outposts per region and cycle, plus NextToken pages).",
    ["region"],
)
PROBE_DURATION = Histogram(
    "lifeline_probe_duration_seconds",
    "Latency of each site probe (connect, TLS and request), by kind (issue 13).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class FleetCollector(Collector):
    """Reads Outpost states and the latest poll runs at scrape time (one query each)."""

    def __init__(self, session: Session, now: Callable[[], dt.datetime] | None = None) -> None:
        self.session = session
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        state = GaugeMetricFamily(
            "lifeline_outpost_state",
            "One-hot: 1 for the Outpost's current state, 0 for the other three.",
            labels=["outpost_id", "name", "region", "state"],
        )
        age = GaugeMetricFamily(
            "lifeline_outpost_last_sample_age_seconds",
            "Seconds since the newest ConnectedStatus datapoint (absent when there is none).",
            labels=["outpost_id", "region"],
        )
        value = GaugeMetricFamily(
            "lifeline_outpost_connected_status",
            "The newest ConnectedStatus Average (1 connected, 0 disconnected).",
            labels=["outpost_id", "region"],
        )
        error = GaugeMetricFamily(
            "lifeline_outpost_poll_error",
            "1 when the last poll reported a problem for this Outpost (AccessDenied, no data).",
            labels=["outpost_id", "region"],
        )
        rows = self.session.execute(
            select(
                Outpost.outpost_id,
                Outpost.name,
                Outpost.region,
                Outpost.state,
                Outpost.last_sample_at,
                Outpost.last_value,
                Outpost.last_error,
            ).order_by(Outpost.outpost_id)
        )
        for outpost_id, name, region, current, last_sample_at, last_value, last_error in rows:
            for candidate in STATES:
                state.add_metric([outpost_id, name, region, candidate], 1.0 if current == candidate else 0.0)
            if last_sample_at is not None:
                age.add_metric([outpost_id, region], max(0.0, (now - last_sample_at).total_seconds()))
            if last_value is not None:
                value.add_metric([outpost_id, region], float(last_value))
            error.add_metric([outpost_id, region], 1.0 if last_error else 0.0)
        yield from (state, age, value, error)

        finished = GaugeMetricFamily(
            "lifeline_poll_last_finished_timestamp_seconds",
            "When the latest run of a job finished, by outcome (from the poll_runs table).",
            labels=["job", "outcome"],
        )
        last_duration = GaugeMetricFamily(
            "lifeline_poll_last_duration_seconds",
            "Duration of the latest finished run of a job (from the poll_runs table).",
            labels=["job"],
        )
        latest = (
            select(PollRun.job, PollRun.outcome, func.max(PollRun.finished_at))
            .where(PollRun.finished_at.is_not(None))
            .group_by(PollRun.job, PollRun.outcome)
        )
        for job, outcome, when in self.session.execute(latest):
            if when is not None:
                finished.add_metric([job, outcome], when.timestamp())
        last_ids = (
            select(func.max(PollRun.id)).where(PollRun.finished_at.is_not(None)).group_by(PollRun.job)
        ).scalar_subquery()
        for job, started, ended in self.session.execute(
            select(PollRun.job, PollRun.started_at, PollRun.finished_at).where(PollRun.id.in_(last_ids))
        ):
            if ended is not None:
                last_duration.add_metric([job], max(0.0, (ended - started).total_seconds()))
        yield from (finished, last_duration)


class ProbeCollector(Collector):
    """The latest site probe results and site views of every vantage, read at scrape time."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "lifeline_probe_up",
            "1 when the latest site probe reached its target (authentication probes: was accepted).",
            labels=["vantage", "target", "kind"],
        )
        latency = GaugeMetricFamily(
            "lifeline_probe_latency_seconds",
            "Latency of the latest site probe (the histogram lifeline_probe_duration_seconds has them all).",
            labels=["vantage", "target", "kind"],
        )
        checked = GaugeMetricFamily(
            "lifeline_probe_last_checked_timestamp_seconds",
            "When the latest site probe ran.",
            labels=["vantage", "target", "kind"],
        )
        for row in self.session.execute(
            select(
                ProbeResult.vantage,
                ProbeResult.target,
                ProbeResult.kind,
                ProbeResult.up,
                ProbeResult.latency_ms,
                ProbeResult.checked_at,
            ).order_by(ProbeResult.vantage, ProbeResult.kind, ProbeResult.target)
        ):
            labels = [row.vantage, row.target, row.kind]
            up.add_metric(labels, 1.0 if row.up else 0.0)
            if row.latency_ms is not None:
                latency.add_metric(labels, row.latency_ms / 1000.0)
            checked.add_metric(labels, row.checked_at.timestamp())
        site = GaugeMetricFamily(
            "lifeline_site_view_state",
            "One-hot: each Outpost's state as seen from a vantage by the site probes.",
            labels=["vantage", "outpost_id", "state"],
        )
        for vantage, outpost_id, current in self.session.execute(
            select(SiteView.vantage, Outpost.outpost_id, SiteView.state)
            .join(Outpost, Outpost.id == SiteView.outpost_pk)
            .order_by(SiteView.vantage, Outpost.outpost_id)
        ):
            for candidate in STATES:
                site.add_metric([vantage, outpost_id, candidate], 1.0 if current == candidate else 0.0)
        yield from (up, latency, checked, site)


class AggregateCollector(Collector):
    """What an anonymous scrape may see (LIFELINE_METRICS_PUBLIC=false): counts, no Outpost names,
    ids or endpoints (the per-Outpost series list the whole fleet)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "lifeline_outposts",
            "Outposts by current state (set LIFELINE_METRICS_TOKEN for the per-Outpost series).",
            labels=["state"],
        )
        found = dict(
            (row[0], row[1])
            for row in self.session.execute(select(Outpost.state, func.count()).group_by(Outpost.state))
        )
        for state in STATES:
            counts.add_metric([state], float(found.get(state, 0)))
        yield counts


def render_metrics(session: Session, registry: Any = REGISTRY, *, aggregate_only: bool = False) -> bytes:
    """The exposition text: this process's instruments, then the fleet read from the database
    (`aggregate_only`: counts per state instead of one series per Outpost and probe target)."""
    fleet = CollectorRegistry(auto_describe=False)
    if aggregate_only:
        fleet.register(AggregateCollector(session))
    else:
        fleet.register(FleetCollector(session))
        fleet.register(ProbeCollector(session))
    return generate_latest(registry) + generate_latest(fleet)
