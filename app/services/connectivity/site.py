"""The site view (issue 13): probe results from this dashboard's vantage, each Outpost's state as
seen from here (with hysteresis), and the verdict that combines it with CloudWatch's Region view.

CloudWatch stays the record for uptime and incidents; the site view is the faster signal. A
site-observed stretch is kept per vantage and reconciled with CloudWatch's datapoints when they
arrive (a backfill after the dashboard lost CloudWatch). Flush, never commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import upsert
from app.integrations import probes
from app.models import ConnectedSample, Outpost, ProbeResult, SiteStretch, SiteView
from app.services.connectivity.spans import dated, dated_span
from app.services.connectivity.status import CONNECTED, DISCONNECTED, LIVE_PERIOD, UNKNOWN, Vantage

SITE_VIEW = "site view"
CLOUDWATCH = "CloudWatch"
# A site view that disagrees with datapoints CloudWatch published this long after the site view's
# change is not trusted (say IAM is refused for a reason other than the link).
DISTRUST_AFTER = dt.timedelta(seconds=2 * LIVE_PERIOD)
# Stretches are reconciled once CloudWatch had time to publish (and Lifeline to read) their minutes.
RECONCILE_AFTER = dt.timedelta(minutes=3)
RECONCILE_HORIZON = dt.timedelta(days=63)
SEVERITY = {DISCONNECTED: 0, "DEGRADED": 1, UNKNOWN: 2, CONNECTED: 3}


@dataclass(frozen=True)
class Located:
    """A probe result with what it is about."""

    result: probes.ProbeResult
    region: str | None = None
    cluster_pk: int | None = None


@dataclass(frozen=True)
class Observation:
    state: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """What the overview shows for one Outpost: the faster of the two views, and which one it is."""

    state: str
    since: dt.datetime | None
    source: str  # CLOUDWATCH or SITE_VIEW
    vantage: str
    cloudwatch_state: str
    site_state: str | None
    evidence: tuple[str, ...]
    note: str

    @property
    def text(self) -> str:
        words = {DISCONNECTED: "Cut off from the Region", CONNECTED: "Connected to the Region"}
        head = words.get(self.state, f"{self.state.title()}")
        since = f" since {dated(self.since, seconds=True)} UTC" if self.since else ""
        evidence = f" (site view from {self.vantage}: {', '.join(self.evidence)})" if self.evidence else ""
        return f"{head}{since}{evidence}" + (f"; {self.note}" if self.note else "")


# ---------------------------------------------------------------- recording


def record_results(session: Session, vantage: str, results: Sequence[Located], now: dt.datetime) -> None:
    """Upsert the latest result of each probe (natural key vantage, kind, target); `since` moves
    only when the result changes."""
    if not results:
        return
    previous = {
        (kind, target): (result, since)
        for kind, target, result, since in session.execute(
            select(ProbeResult.kind, ProbeResult.target, ProbeResult.result, ProbeResult.since).where(
                ProbeResult.vantage == vantage
            )
        )
    }
    rows = []
    for located in results:
        r = located.result
        before = previous.get((r.kind, r.target))
        rows.append(
            {
                "vantage": vantage,
                "kind": r.kind,
                "target": r.target[:255],
                "region": located.region,
                "cluster_pk": located.cluster_pk,
                "result": r.result,
                "up": r.up,
                "latency_ms": None if r.latency_seconds is None else round(r.latency_seconds * 1000, 2),
                "detail": r.detail[:2000],
                "checked_at": now,
                "since": before[1] if before and before[0] == r.result else now,
            }
        )
    upsert(
        session,
        ProbeResult.__table__,  # type: ignore[arg-type]
        rows,
        conflict_columns=("vantage", "kind", "target"),
        update_columns=(
            "region",
            "cluster_pk",
            "result",
            "up",
            "latency_ms",
            "detail",
            "checked_at",
            "since",
        ),
    )
    session.flush()


def observe(
    clusters: Mapping[str, Mapping[str, probes.ProbeResult]], aws_reachable: bool | None
) -> Observation:
    """One raw observation of an Outpost from its clusters' probes ({cluster name: {kind: result}}).

    IAM accepted anywhere: connected. IAM refused (401) where the API answers: cut off, as a local
    cluster refuses IAM once it cannot reach STS. Neither: unknown (the API is not reachable from here).
    """
    evidence: list[str] = []
    accepted = rejected = False
    for name, by_kind in sorted(clusters.items()):
        iam = by_kind.get(probes.KUBE_IAM)
        x509 = by_kind.get(probes.KUBE_X509)
        livez = by_kind.get(probes.KUBE_LIVEZ)
        if iam is not None and iam.result == probes.OK:
            accepted = True
            evidence.append(f"IAM accepted by {name}")
        elif iam is not None and iam.result == probes.REJECTED:
            rejected = True
            evidence.append(f"IAM rejected by {name}")
        elif livez is not None and not livez.up:
            evidence.append(f"API of {name} unreachable ({livez.result})")
        elif iam is not None:
            evidence.append(f"IAM not checked on {name}: {iam.detail}")
        if x509 is not None and (rejected or not accepted):
            if x509.up:
                evidence.append("x509 works")
            elif x509.latency_seconds is None:
                evidence.append("no x509 identity to try")
            else:
                evidence.append(f"x509 fails ({x509.result})")
    if aws_reachable is False:
        evidence.append("AWS endpoints unreachable from this dashboard")
    elif aws_reachable:
        evidence.append("AWS endpoints answer")
    state = CONNECTED if accepted else DISCONNECTED if rejected else UNKNOWN
    return Observation(state, tuple(evidence))


def update_views(
    session: Session,
    vantage: str,
    observations: Mapping[int, Observation],
    hysteresis: int,
    now: dt.datetime,
) -> tuple[set[int], set[int]]:
    """Apply one round of observations with hysteresis; return (changed, pending) Outpost pks.

    The state changes after `hysteresis` consecutive observations of the new state (so one lost
    packet is not an incident), and its `since` is the first of them. Each change closes the
    Outpost's open stretch and opens the next.
    """
    views = {
        view.outpost_pk: view
        for view in session.scalars(
            select(SiteView).where(SiteView.vantage == vantage, SiteView.outpost_pk.in_(list(observations)))
        )
    }
    changed: set[int] = set()
    pending: set[int] = set()
    for pk, seen in observations.items():
        view = views.get(pk)
        if view is None:
            session.add(
                SiteView(
                    vantage=vantage,
                    outpost_pk=pk,
                    state=seen.state,
                    since=now,
                    observed=seen.state,
                    observed_count=0,
                    observed_since=now,
                    evidence=list(seen.evidence),
                    checked_at=now,
                    changed_at=now,
                )
            )
            _open_stretch(session, vantage, pk, seen, now)
            changed.add(pk)
            continue
        view.evidence = list(seen.evidence)
        view.checked_at = now
        if seen.state == view.state:
            view.observed, view.observed_count, view.observed_since = seen.state, 0, now
            continue
        if seen.state == view.observed and view.observed_count > 0:
            view.observed_count += 1
        else:
            view.observed, view.observed_count, view.observed_since = seen.state, 1, now
        if view.observed_count < hysteresis:
            pending.add(pk)
            continue
        started = view.observed_since
        _close_stretch(session, vantage, pk, started)
        view.state, view.since, view.changed_at = seen.state, started, now
        view.observed_count = 0
        _open_stretch(session, vantage, pk, seen, started)
        changed.add(pk)
    session.flush()
    return changed, pending


def _open_stretch(session: Session, vantage: str, pk: int, seen: Observation, start: dt.datetime) -> None:
    session.add(
        SiteStretch(
            vantage=vantage, outpost_pk=pk, state=seen.state, started_at=start, evidence=list(seen.evidence)
        )
    )


def _close_stretch(session: Session, vantage: str, pk: int, end: dt.datetime) -> None:
    for stretch in session.scalars(
        select(SiteStretch).where(
            SiteStretch.vantage == vantage, SiteStretch.outpost_pk == pk, SiteStretch.ended_at.is_(None)
        )
    ):
        stretch.ended_at = max(end, stretch.started_at)


def reconcile_stretches(session: Session, vantage: str, now: dt.datetime, *, limit: int = 200) -> int:
    """Compare site-observed stretches with CloudWatch's datapoints for the same time, once those
    could have arrived: agrees / differs, or none while CloudWatch has nothing for it (the site
    view is then the only record). Re-checked until reconciled, so a later backfill settles it."""
    candidates = list(
        session.scalars(
            select(SiteStretch)
            .where(
                SiteStretch.vantage == vantage,
                SiteStretch.cloudwatch.in_(("pending", "none")),
                SiteStretch.state != UNKNOWN,
                SiteStretch.started_at >= now - RECONCILE_HORIZON,
                SiteStretch.started_at <= now - RECONCILE_AFTER,
            )
            .order_by(SiteStretch.started_at)
            .limit(limit)
        )
    )
    settled = 0
    for stretch in candidates:
        end = stretch.ended_at or now
        if end - stretch.started_at < dt.timedelta(seconds=1):
            continue
        samples = session.execute(
            select(ConnectedSample.ts, ConnectedSample.value, ConnectedSample.period_seconds).where(
                ConnectedSample.outpost_pk == stretch.outpost_pk,
                ConnectedSample.ts >= stretch.started_at - dt.timedelta(seconds=300),
                ConnectedSample.ts < end,
            )
        ).all()
        covered = 0.0
        down = 0.0
        for ts, value, period in samples:
            overlap = (
                min(ts + dt.timedelta(seconds=period), end) - max(ts, stretch.started_at)
            ).total_seconds()
            if overlap > 0:
                covered += overlap
                down += (1.0 - value) * overlap
        stretch.cloudwatch_seconds = covered
        span = (end - stretch.started_at).total_seconds()
        finished = stretch.ended_at is not None and now - stretch.ended_at >= RECONCILE_AFTER
        if covered >= 0.5 * span and finished:
            site_down = stretch.state == DISCONNECTED
            cloudwatch_down = down >= 0.5 * covered
            stretch.cloudwatch = "agrees" if site_down == cloudwatch_down else "differs"
            stretch.reconciled_at = now
            settled += 1
        elif covered == 0 and finished:
            stretch.cloudwatch = "none"
    session.flush()
    return settled


# ---------------------------------------------------------------- readers


def views_by_outpost(session: Session, vantage: str, pks: Iterable[int] | None = None) -> dict[int, SiteView]:
    stmt = select(SiteView).where(SiteView.vantage == vantage)
    if pks is not None:
        stmt = stmt.where(SiteView.outpost_pk.in_(list(pks)))
    return {view.outpost_pk: view for view in session.scalars(stmt)}


def verdict(outpost: Outpost, view: SiteView | None, vantage: str) -> Verdict:
    """The faster of CloudWatch's state and the site view, saying which it is.

    The site view wins when CloudWatch cannot say (UNKNOWN) or when the site view changed after
    CloudWatch's state began (the site saw it first); CloudWatch wins when they agree (it is the
    record), when the site view cannot say, and when CloudWatch's datapoints since the site view's
    change contradict it.
    """
    cw_state, cw_since = outpost.state, outpost.state_since
    base = Verdict(cw_state, cw_since, CLOUDWATCH, vantage, cw_state, None, (), "")
    if view is None:
        return base
    evidence = tuple(str(e) for e in (view.evidence or ()))
    base = dataclasses.replace(base, site_state=view.state, evidence=evidence)
    if view.state == UNKNOWN:
        return base
    if view.state == cw_state:
        return dataclasses.replace(base, note="CloudWatch agrees")
    site = dataclasses.replace(base, state=view.state, since=view.since, source=SITE_VIEW)
    if cw_state == UNKNOWN:
        return dataclasses.replace(site, note="CloudWatch has no current datapoint")
    reported_until = (
        outpost.last_sample_at + dt.timedelta(seconds=LIVE_PERIOD) if outpost.last_sample_at else None
    )
    if reported_until is not None and reported_until > view.since + DISTRUST_AFTER:
        return dataclasses.replace(
            base, note=f"the site view says {view.state.lower()}; CloudWatch's newer data wins"
        )
    if cw_since is None or view.since >= cw_since:
        return dataclasses.replace(site, note="CloudWatch has not reported yet")
    return dataclasses.replace(base, note=f"the site view says {view.state.lower()}")


def verdicts(session: Session, vantage: str, outposts: Sequence[Outpost]) -> dict[int, Verdict]:
    views = views_by_outpost(session, vantage, [o.id for o in outposts])
    return {o.id: verdict(o, views.get(o.id), vantage) for o in outposts}


def apply_to_rows(
    rows: Sequence[object], found: Mapping[int, Verdict], *, state: str | None, sort: str
) -> list[object]:
    """Overview rows filtered by the verdict's state and (for the state sort) ordered by it."""
    kept = [r for r in rows if state is None or found[r.outpost.id].state == state]  # type: ignore[attr-defined]
    if sort.lstrip("-") == "state":
        kept.sort(
            key=lambda r: (SEVERITY.get(found[r.outpost.id].state, 9), r.outpost.name.lower()),  # type: ignore[attr-defined]
            reverse=sort.startswith("-"),
        )
    return kept


def count_verdicts(found: Mapping[int, Verdict]) -> dict[str, int]:
    counts = dict.fromkeys((CONNECTED, "DEGRADED", DISCONNECTED, UNKNOWN), 0)
    for v in found.values():
        counts[v.state] = counts.get(v.state, 0) + 1
    return counts


def marker(session: Session, vantage: str) -> tuple[object, ...]:
    """Changes when this vantage's site views change state (cache key for the overview)."""
    row = session.execute(
        select(func.max(SiteView.changed_at), func.count()).where(SiteView.vantage == vantage)
    ).one()
    return (row[0], row[1])


def probe_vantage(session: Session, vantage: str, now: dt.datetime, fresh: dt.timedelta) -> Vantage | None:
    """Can this dashboard reach AWS, from its latest AWS endpoint probes? None when they are older
    than `fresh` (probes off or not run yet: the poll runs decide then)."""
    rows = session.execute(
        select(
            ProbeResult.up, ProbeResult.since, ProbeResult.checked_at, ProbeResult.detail, ProbeResult.target
        )
        .where(
            ProbeResult.vantage == vantage,
            ProbeResult.kind.in_(probes.AWS_KINDS),
            ProbeResult.checked_at >= now - fresh,
        )
        .order_by(ProbeResult.target)
    ).all()
    if not rows:
        return None
    checked = max(r.checked_at for r in rows)
    source = f"site probes from {vantage}"
    if any(r.up for r in rows):
        return Vantage(True, None, checked, checked, None, source)
    since = max(r.since for r in rows)
    return Vantage(False, since, None, checked, f"{rows[0].target}: {rows[0].detail}", source)


def cluster_results(session: Session, cluster_pk: int) -> dict[str, list[ProbeResult]]:
    """Every vantage's latest probes of one cluster: {vantage: [results by kind]}."""
    found: dict[str, list[ProbeResult]] = defaultdict(list)
    for row in session.scalars(
        select(ProbeResult)
        .where(ProbeResult.cluster_pk == cluster_pk)
        .order_by(ProbeResult.vantage, ProbeResult.kind, ProbeResult.target)
    ):
        found[row.vantage].append(row)
    return dict(found)


@dataclass(frozen=True)
class LaneSegment:
    state: str
    start: dt.datetime
    end: dt.datetime
    share: float  # of the lane's width, in percent
    cloudwatch: str

    @property
    def css(self) -> str:
        return {CONNECTED: "c", DISCONNECTED: "x"}.get(self.state, "u")

    @property
    def title(self) -> str:
        record = {
            "none": "CloudWatch has no data for it: the site view is the only record",
            "agrees": "CloudWatch agrees",
            "differs": "CloudWatch differs",
            "pending": "not yet compared with CloudWatch",
        }.get(self.cloudwatch, self.cloudwatch)
        return f"{dated_span(self.start, self.end, seconds=True)}: {self.state.lower()} (site view; {record})"


def site_lane(
    session: Session, vantage: str, outpost_pk: int, start: dt.datetime, end: dt.datetime
) -> list[LaneSegment]:
    """The site view's stretches clipped to [start, end), with gaps (no probes) as unknown."""
    total = (end - start).total_seconds()
    if total <= 0:
        return []
    stretches = session.scalars(
        select(SiteStretch)
        .where(
            SiteStretch.vantage == vantage,
            SiteStretch.outpost_pk == outpost_pk,
            SiteStretch.started_at < end,
            (SiteStretch.ended_at.is_(None)) | (SiteStretch.ended_at > start),
        )
        .order_by(SiteStretch.started_at)
    )
    segments: list[LaneSegment] = []
    cursor = start
    for stretch in stretches:
        s = max(stretch.started_at, start)
        e = min(stretch.ended_at or end, end)
        if s > cursor:
            segments.append(
                LaneSegment("GAP", cursor, s, 100 * (s - cursor).total_seconds() / total, "pending")
            )
        if e > s:
            segments.append(
                LaneSegment(stretch.state, s, e, 100 * (e - s).total_seconds() / total, stretch.cloudwatch)
            )
            cursor = e
    if segments and cursor < end:
        segments.append(
            LaneSegment("GAP", cursor, end, 100 * (end - cursor).total_seconds() / total, "pending")
        )
    return segments


def site_only_stretches(session: Session, outpost_pk: int, *, limit: int = 50) -> list[SiteStretch]:
    """Site-observed disconnections CloudWatch has no data for (the site view is their only record)."""
    return list(
        session.scalars(
            select(SiteStretch)
            .where(
                SiteStretch.outpost_pk == outpost_pk,
                SiteStretch.state == DISCONNECTED,
                SiteStretch.cloudwatch == "none",
            )
            .order_by(SiteStretch.started_at.desc())
            .limit(limit)
        )
    )


__all__ = [
    "CLOUDWATCH",
    "SITE_VIEW",
    "LaneSegment",
    "Located",
    "Observation",
    "Verdict",
    "apply_to_rows",
    "cluster_results",
    "count_verdicts",
    "marker",
    "observe",
    "probe_vantage",
    "reconcile_stretches",
    "record_results",
    "site_lane",
    "site_only_stretches",
    "update_views",
    "verdict",
    "verdicts",
    "views_by_outpost",
]
