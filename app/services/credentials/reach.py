"""Who can get into which cluster if the Region goes away now: the Outposts cut off (or degraded)
at this moment, each person's own working credential per cluster, and what to do where there is none.

Pages use it for the "Get in" panel, the cut-off banner and the "Your access" view. Read only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from app.models import Cluster, Credential, Outpost, SiteView
from app.services.audit import Actor
from app.services.connectivity import site
from app.services.connectivity.status import DISCONNECTED
from app.services.credentials.queries import owns
from app.services.credentials.vocabulary import LONG_LIFETIME_DAYS
from app.services.readiness.records import get_state, horizon_hours
from app.settings import Settings

DEGRADED = "DEGRADED"
# Outpost states that cut a cluster off (or may, any minute): the ones that need a way in.
PROBLEM_STATES = (DISCONNECTED, DEGRADED)


@dataclass(frozen=True)
class OutpostRef:
    id: int
    outpost_id: str
    name: str
    region: str


@dataclass(frozen=True)
class ClusterRef:
    id: int
    name: str
    region: str


@dataclass(frozen=True)
class CutOff:
    """An Outpost that is disconnected or degraded now, and its clusters. Plain values, not rows:
    the banner also shows on error pages, rendered after the request's session has ended."""

    outpost: OutpostRef
    state: str
    since: dt.datetime | None
    clusters: tuple[ClusterRef, ...]


@dataclass(frozen=True)
class Way:
    """One person's way into one cluster: their own usable credential, or why there is none."""

    cluster: Cluster
    credential: Credential | None
    # "ready", "expired", "issuing", "failed", "none"
    status: str
    cut_off: str | None = None  # the Outpost's problem state, when it has one now
    pending: Credential | None = None  # a credential being issued (or the last failed attempt)

    @property
    def reachable(self) -> bool:
        return self.status == "ready"

    @property
    def until(self) -> dt.datetime | None:
        return self.credential.not_after if self.credential is not None else None


@dataclass(frozen=True)
class Access:
    """The "Your access" view: every cluster, with the person's way in."""

    ways: list[Way] = field(default_factory=list)

    @property
    def reachable(self) -> list[Way]:
        return [w for w in self.ways if w.reachable]

    @property
    def unreachable(self) -> list[Way]:
        return [w for w in self.ways if not w.reachable]


def cut_off_outposts(session: Session, vantage: str) -> list[CutOff]:
    """Outposts whose state now (the faster of CloudWatch and the site view) is disconnected or
    degraded, worst first, with their clusters. Only candidates are read: an Outpost either side
    calls bad, so the banner costs two indexed reads however large the fleet."""
    seen_bad = select(SiteView.outpost_pk).where(
        SiteView.vantage == vantage, SiteView.state.in_(PROBLEM_STATES)
    )
    candidates = list(
        session.scalars(
            select(Outpost)
            .where(or_(Outpost.state.in_(PROBLEM_STATES), Outpost.id.in_(seen_bad)))
            .options(selectinload(Outpost.clusters))
            .order_by(Outpost.name)
        )
    )
    if not candidates:
        return []
    verdicts = site.verdicts(session, vantage, candidates)
    found = [
        CutOff(
            OutpostRef(o.id, o.outpost_id, o.name, o.region),
            verdicts[o.id].state,
            verdicts[o.id].since,
            tuple(ClusterRef(c.id, c.name, c.region) for c in sorted(o.clusters, key=lambda c: c.name)),
        )
        for o in candidates
        if verdicts[o.id].state in PROBLEM_STATES
    ]
    found.sort(key=lambda c: (PROBLEM_STATES.index(c.state), c.outpost.name.lower()))
    return found


def way_in(
    cluster: Cluster,
    credentials: Sequence[Credential],
    actor: Actor,
    now: dt.datetime,
    cut_off: str | None = None,
) -> Way:
    """The person's way into `cluster` from the credentials on it: the active one they own that has
    not expired (the latest to expire), else the reason they have none."""
    mine = [c for c in credentials if c.cluster_pk == cluster.id and owns(c, actor)]
    usable = [c for c in mine if c.status == "active" and c.not_after is not None and c.not_after > now]
    if usable:
        best = max(usable, key=lambda c: c.not_after or now)
        return Way(cluster, best, "ready", cut_off)
    issuing = [c for c in mine if c.status == "issuing"]
    if issuing:
        return Way(cluster, None, "issuing", cut_off, pending=issuing[0])
    expired = [c for c in mine if c.status == "active"]
    if expired:
        return Way(cluster, expired[0], "expired", cut_off)
    failed = sorted((c for c in mine if c.status == "failed"), key=lambda c: c.id, reverse=True)
    if failed:
        return Way(cluster, None, "failed", cut_off, pending=failed[0])
    return Way(cluster, None, "none", cut_off)


def _credentials_on(session: Session, cluster_pks: Sequence[int]) -> list[Credential]:
    if not cluster_pks:
        return []
    stmt = (
        select(Credential)
        .where(
            Credential.cluster_pk.in_(list(cluster_pks)),
            Credential.status.in_(("active", "issuing", "failed")),
            Credential.kind != "fallback",
        )
        .order_by(Credential.id.desc())
    )
    return list(session.scalars(stmt))


def ways_in(
    session: Session,
    actor: Actor,
    clusters: Sequence[Cluster],
    now: dt.datetime,
    cut_off: dict[int, str] | None = None,
) -> list[Way]:
    """The person's way into each of `clusters` (one read of the credentials on them)."""
    credentials = _credentials_on(session, [c.id for c in clusters])
    problems = cut_off or {}
    return [way_in(c, credentials, actor, now, problems.get(c.id)) for c in clusters]


def cut_off_clusters(found: Sequence[CutOff]) -> dict[int, str]:
    """Cluster id -> its Outpost's problem state."""
    return {c.id: item.state for item in found for c in item.clusters}


def your_access(session: Session, actor: Actor, vantage: str, now: dt.datetime) -> Access:
    """Every cluster with the person's way in, those without one first (they need action while the
    Region is still reachable), then by name."""
    clusters = list(
        session.scalars(select(Cluster).options(selectinload(Cluster.outpost)).order_by(Cluster.name))
    )
    ways = ways_in(session, actor, clusters, now, cut_off_clusters(cut_off_outposts(session, vantage)))
    ways.sort(key=lambda w: (w.reachable, w.cluster.name.lower()))
    return Access(ways)


def default_lifetime_days(settings: Settings) -> int:
    """The issue form's default: the product's advice (90 days or less), within the server's cap."""
    return max(1, min(LONG_LIFETIME_DAYS, settings.credential_max_lifetime_days))


@dataclass(frozen=True)
class HorizonAdvice:
    horizon_hours: int
    # The shortest lifetime the readiness check accepts without a warning (twice the horizon).
    minimum_seconds: int


def horizon_advice(session: Session, settings: Settings, cluster: Cluster) -> HorizonAdvice:
    """What the cluster's disconnect horizon asks of a credential's lifetime: the readiness check
    fails a credential that ends inside the horizon and warns inside twice the horizon."""
    hours = horizon_hours(settings, get_state(session, cluster))
    return HorizonAdvice(hours, 2 * hours * 3600)
