"""Readiness in the database: latest findings per cluster, per-poll samples, exemptions, attestations.

Stored findings are the raw catalogue output; exemptions and attestations are applied when read,
so accepting a risk or attesting takes effect at once, without waiting for the next poll.
Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import Cluster, Credential
from app.models.base import utcnow
from app.models.readiness import ClusterReadiness, ReadinessAttestation, ReadinessExemption, ReadinessSample
from app.services.audit import Actor, record_audit
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.readiness.catalogue import (
    AttestationFact,
    ExemptionRule,
    apply_exemptions,
    check_attestation,
    counts,
    score,
)
from app.services.readiness.model import CheckContext, CredentialFact, Finding, Severity, Status
from app.services.readiness.reachability import Reachability, reachability
from app.services.readiness.specs import ATTESTATION_TOPICS, SPECS
from app.settings import Settings

MAX_EXEMPTION_DAYS = 365
MAX_ATTESTATION_DAYS = 400


class ReadinessInputError(InvalidInput):
    """A form or API value that cannot be accepted; `errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors=errors)


class ExemptionNotFound(NotFound):
    """The exemption does not exist on this cluster."""


# ---------------------------------------------------------------- reading


def get_state(session: Session, cluster: Cluster) -> ClusterReadiness | None:
    return session.get(ClusterReadiness, cluster.id)


def ensure_state(session: Session, cluster: Cluster) -> ClusterReadiness:
    state = session.get(ClusterReadiness, cluster.id)
    if state is None:
        state = ClusterReadiness(
            cluster_pk=cluster.id, auth_path="none", counts={}, findings=[], nodes=[], facts={}
        )
        session.add(state)
        session.flush()
    return state


def horizon_hours(settings: Settings, state: ClusterReadiness | None) -> int:
    if state is not None and state.horizon_hours:
        return state.horizon_hours
    return settings.readiness_horizon_hours


def check_context(
    settings: Settings, state: ClusterReadiness | None, now: dt.datetime | None = None
) -> CheckContext:
    return CheckContext(
        horizon_hours=horizon_hours(settings, state),
        local_registries=tuple(settings.readiness_local_registries),
        surge_percent=settings.readiness_surge_percent,
        stuck_status_hours=settings.readiness_stuck_status_hours,
        now=now or utcnow(),
    )


def credential_facts(session: Session, cluster: Cluster) -> tuple[CredentialFact, ...]:
    """Lifeline's x509 credentials for the cluster as the checks see them."""
    rows = session.scalars(
        select(Credential).where(
            Credential.cluster_pk == cluster.id, Credential.status.in_(("active", "revoked"))
        )
    )
    return tuple(
        CredentialFact(
            name=row.username,
            kind=row.kind,
            not_after=row.not_after,
            verified=bool(row.last_verified_ok),
            revoked=row.status == "revoked" or row.revoked_at is not None,
        )
        for row in rows
        if row.not_after is not None
    )


def exemptions(
    session: Session, cluster: Cluster, *, include_expired: bool = False
) -> list[ReadinessExemption]:
    query = select(ReadinessExemption).where(ReadinessExemption.cluster_pk == cluster.id)
    if not include_expired:
        query = query.where(ReadinessExemption.expires_at > utcnow())
    return list(session.scalars(query.order_by(ReadinessExemption.expires_at)))


def attestations(session: Session, cluster: Cluster) -> list[ReadinessAttestation]:
    query = select(ReadinessAttestation).where(ReadinessAttestation.cluster_pk == cluster.id)
    return list(session.scalars(query.order_by(ReadinessAttestation.attested_at.desc())))


def _rules(rows: Sequence[ReadinessExemption]) -> list[ExemptionRule]:
    return [ExemptionRule(r.check_id, r.target, r.reason, r.author, r.expires_at, r.id) for r in rows]


def _facts(rows: Sequence[ReadinessAttestation]) -> list[AttestationFact]:
    return [AttestationFact(r.topic, r.statement, r.author, r.attested_at, r.expires_at) for r in rows]


def current_findings(
    session: Session, cluster: Cluster, state: ClusterReadiness | None, now: dt.datetime | None = None
) -> list[Finding]:
    """The latest poll's findings plus attestations, with exemptions applied as of now."""
    now = now or utcnow()
    raw = [Finding.from_dict(item) for item in (state.findings if state else [])]
    if not raw:
        return []
    context = CheckContext(now=now)
    facts = _facts(attestations(session, cluster))
    raw += [check_attestation(topic, facts, context) for topic in ATTESTATION_TOPICS]
    from app.services.drills.readiness import with_drill_failures

    raw = with_drill_failures(session, cluster, raw)
    return apply_exemptions(raw, _rules(exemptions(session, cluster)), now)


# ---------------------------------------------------------------- polling results


@dataclass(frozen=True)
class PollResult:
    """What one poll of one cluster produced (the job builds it; `record_poll` stores it)."""

    polled_at: dt.datetime
    auth_path: str  # iam | x509 | none
    reachable: bool
    findings: tuple[Finding, ...] = ()
    nodes: tuple[dict[str, Any], ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    iam_error: str | None = None
    x509_error: str | None = None
    error: str | None = None
    pods: int | None = None
    api_answered: bool = False
    x509_ok: bool = False


def record_poll(session: Session, cluster: Cluster, result: PollResult) -> ClusterReadiness:
    """Replace the cluster's latest findings and add one small sample to its history; a score drop
    or a new critical failure goes to the notifications outbox in the same transaction."""
    state = ensure_state(session, cluster)
    old_score = state.score
    old_critical = _critical_failures(state.findings or [])
    state.last_polled_at = result.polled_at
    state.auth_path = result.auth_path
    state.reachable = result.reachable
    state.iam_error = result.iam_error
    state.x509_error = result.x509_error
    state.last_error = result.error
    state.api_answered = result.api_answered or result.reachable
    if result.x509_ok:
        state.x509_last_ok_at = result.polled_at
    if result.reachable:
        state.last_success_at = result.polled_at
    if result.findings:
        state.findings = [f.as_dict() for f in result.findings]
        state.nodes = list(result.nodes)
        state.facts = dict(result.facts)
        state.evaluated_at = result.polled_at
    effective = current_findings(session, cluster, state, result.polled_at)
    state.score = score(effective) if effective else None
    state.counts = counts(effective)
    session.add(
        ReadinessSample(
            cluster_pk=cluster.id,
            polled_at=result.polled_at,
            auth_path=result.auth_path,
            reachable=result.reachable,
            score=state.score if result.findings else None,
            fail_count=state.counts.get("fail", 0),
            warn_count=state.counts.get("warn", 0),
            unknown_count=state.counts.get("unknown", 0),
            pods=result.pods,
            nodes=len(result.nodes) if result.findings else None,
        )
    )
    if result.findings:
        from app.services.notifications.events import readiness_changed

        # Exempted findings are `accepted` in `effective`: they do not page anyone.
        new_critical = _critical_failures([f.as_dict() for f in effective]) - old_critical
        readiness_changed(
            session,
            cluster=cluster.name,
            region=cluster.region,
            old_score=old_score,
            new_score=state.score,
            new_critical=sorted(new_critical),
            now=result.polled_at,
        )
    session.flush()
    return state


def _critical_failures(findings: Sequence[dict[str, Any]]) -> set[str]:
    return {
        str(f.get("check_id"))
        for f in findings
        if f.get("status") == Status.fail.value and f.get("severity") == Severity.critical.value
    }


def refresh_score(session: Session, cluster: Cluster) -> None:
    """Recompute the stored score and counts after an exemption or attestation changed."""
    state = get_state(session, cluster)
    if state is None or not state.findings:
        return
    effective = current_findings(session, cluster, state)
    state.score = score(effective)
    state.counts = counts(effective)
    session.flush()


def score_history(session: Session, cluster: Cluster, *, days: int = 30) -> list[ReadinessSample]:
    since = utcnow() - dt.timedelta(days=days)
    query = (
        select(ReadinessSample)
        .where(ReadinessSample.cluster_pk == cluster.id, ReadinessSample.polled_at >= since)
        .order_by(ReadinessSample.polled_at)
    )
    return list(session.scalars(query))


def prune_samples(session: Session, older_than: dt.datetime) -> int:
    result = session.execute(delete(ReadinessSample).where(ReadinessSample.polled_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------- changes people make (audited)


def _target(cluster: Cluster) -> str:
    return f"cluster:{cluster.region}/{cluster.name}"


def _expiry(value: dt.datetime | None, max_days: int, now: dt.datetime) -> dt.datetime:
    if value is None:
        raise ReadinessInputError({"expires_at": "an expiry date is required"})
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if value <= now:
        raise ReadinessInputError({"expires_at": "must be in the future"})
    if value > now + dt.timedelta(days=max_days):
        raise ReadinessInputError({"expires_at": f"must be within {max_days} days"})
    return value


def add_exemption(
    session: Session,
    cluster: Cluster,
    *,
    check_id: str,
    target: str,
    reason: str,
    expires_at: dt.datetime | None,
    actor: Actor,
) -> ReadinessExemption:
    """Accept the risk of a check (or one object of it) until `expires_at`; audited."""
    now = utcnow()
    errors = {}
    if check_id not in SPECS:
        errors["check_id"] = f"unknown check {check_id!r}"
    target = target.strip()
    if target and target.count("/") not in (1, 2):
        errors["target"] = "use Kind/name or Kind/namespace/name (empty: the whole check)"
    if len(reason.strip()) < 10:
        errors["reason"] = "say why the risk is accepted (at least 10 characters)"
    try:
        expiry = _expiry(expires_at, MAX_EXEMPTION_DAYS, now)
    except ReadinessInputError as exc:
        errors.update(exc.errors)
    if errors:
        raise ReadinessInputError(errors)
    row = ReadinessExemption(
        cluster_pk=cluster.id,
        check_id=check_id,
        target=target,
        reason=reason.strip(),
        author=actor.name,
        created_at=now,
        expires_at=expiry,
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="readiness.exempt",
        target=_target(cluster),
        details={
            "check_id": check_id,
            "object": target or None,
            "reason": row.reason,
            "expires_at": expiry.isoformat(),
        },
    )
    refresh_score(session, cluster)
    return row


def remove_exemption(session: Session, cluster: Cluster, exemption_id: int, *, actor: Actor) -> None:
    row = session.get(ReadinessExemption, exemption_id)
    if row is None or row.cluster_pk != cluster.id:
        raise ExemptionNotFound(f"no exemption {exemption_id} on this cluster", field="exemption")
    session.delete(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="readiness.exemption_removed",
        target=_target(cluster),
        details={"check_id": row.check_id, "object": row.target or None, "reason": row.reason},
    )
    refresh_score(session, cluster)


def add_attestation(
    session: Session,
    cluster: Cluster,
    *,
    topic: str,
    statement: str,
    expires_at: dt.datetime | None,
    actor: Actor,
) -> ReadinessAttestation:
    """A person confirms what Lifeline cannot check (etcd backups, local DNS, registry); audited."""
    now = utcnow()
    errors = {}
    if topic not in ATTESTATION_TOPICS:
        errors["topic"] = f"choose one of {', '.join(ATTESTATION_TOPICS)}"
    elif topic == "disconnect-drill":
        errors["topic"] = "a passed disconnect drill attests this topic: run a drill on the Drills page"
    if len(statement.strip()) < 10:
        errors["statement"] = "describe what you confirmed (at least 10 characters)"
    try:
        expiry = _expiry(expires_at, MAX_ATTESTATION_DAYS, now)
    except ReadinessInputError as exc:
        errors.update(exc.errors)
    if errors:
        raise ReadinessInputError(errors)
    row = ReadinessAttestation(
        cluster_pk=cluster.id,
        topic=topic,
        statement=statement.strip(),
        author=actor.name,
        attested_at=now,
        expires_at=expiry,
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="readiness.attest",
        target=_target(cluster),
        details={"topic": topic, "statement": row.statement, "expires_at": expiry.isoformat()},
    )
    refresh_score(session, cluster)
    return row


def record_poll_now(session: Session, cluster: Cluster, outcome: str, *, actor: Actor) -> None:
    """Audit a "poll now" asked for by a person (the poll itself records its run and results)."""
    record_audit(
        session,
        actor=actor,
        action="readiness.poll_now",
        target=_target(cluster),
        outcome="success" if outcome in {"ok", "unreachable"} else "failure",
        details={"result": outcome},
    )


def set_horizon(session: Session, cluster: Cluster, hours: int | None, *, actor: Actor) -> ClusterReadiness:
    """Set (or clear, with None) the cluster's disconnect horizon; applies from the next poll."""
    if hours is not None and not 1 <= hours <= 24 * 90:
        raise ReadinessInputError({"horizon_hours": "between 1 and 2160 hours (90 days)"})
    state = ensure_state(session, cluster)
    before = state.horizon_hours
    state.horizon_hours = hours
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="readiness.horizon",
        target=_target(cluster),
        details={"from_hours": before, "to_hours": hours},
    )
    return state


# ---------------------------------------------------------------- views for pages and the API


@dataclass(frozen=True)
class ClusterView:
    cluster: Cluster
    state: ClusterReadiness | None
    findings: list[Finding]
    horizon_hours: int

    @property
    def score(self) -> int | None:
        return score(self.findings) if self.findings else None

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.findings)

    @property
    def reach(self) -> Reachability:
        return reachability(self.state)


class ClusterNotFound(NotFound):
    """No cluster has that name (in that region)."""


class AmbiguousCluster(Conflict):
    """The name exists in several regions and no region was given."""


def find_cluster(session: Session, name: str, region: str | None = None) -> Cluster:
    """The cluster called `name` (in `region` when given); ClusterNotFound, or AmbiguousCluster when
    the name is in several regions and none was given."""
    query = select(Cluster).where(Cluster.name == name)
    if region:
        query = query.where(Cluster.region == region)
    found = list(session.scalars(query))
    if not found:
        raise ClusterNotFound(f"no cluster {name!r}" + (f" in {region}" if region else ""))
    if len(found) > 1:
        regions = ", ".join(sorted(c.region for c in found))
        raise AmbiguousCluster(f"cluster {name!r} exists in {regions}: add ?region=")
    return found[0]


def cluster_view(session: Session, settings: Settings, cluster: Cluster) -> ClusterView:
    state = get_state(session, cluster)
    return ClusterView(
        cluster, state, current_findings(session, cluster, state), horizon_hours(settings, state)
    )


def cluster_views(session: Session, settings: Settings) -> list[ClusterView]:
    clusters = session.scalars(select(Cluster).order_by(Cluster.name, Cluster.region))
    return [cluster_view(session, settings, cluster) for cluster in clusters]
