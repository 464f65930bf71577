"""What drills mean for readiness: a passed drill is an attestation (written when it ends, see
`lifecycle`); the failed items of the latest drill are a finding until a later drill passes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Cluster, Drill, ReadinessAttestation
from app.services.drills.vocabulary import ATTESTATION_TOPIC, FAIL, FINISHED, ITEMS
from app.services.readiness.model import Evidence, Finding, Status
from app.services.readiness.specs import finding


def with_drill_failures(session: Session, cluster: Cluster, findings: Sequence[Finding]) -> list[Finding]:
    """Replace the drill topic's finding with a failure when the latest finished drill of the
    cluster's Outpost failed an item on it (and no attestation came after)."""
    if cluster.outpost_pk is None:
        return list(findings)
    drill = session.scalar(
        select(Drill)
        .where(Drill.outpost_pk == cluster.outpost_pk, Drill.state.in_(FINISHED), Drill.ended_at.is_not(None))
        .order_by(Drill.ended_at.desc())
        .limit(1)
    )
    if drill is None or drill.ended_at is None:
        return list(findings)
    failed = [c for c in drill.checks if c.status == FAIL and c.cluster_pk in (None, cluster.id)]
    if not failed:
        return list(findings)
    later = session.scalar(
        select(ReadinessAttestation.id).where(
            ReadinessAttestation.cluster_pk == cluster.id,
            ReadinessAttestation.topic == ATTESTATION_TOPIC,
            ReadinessAttestation.attested_at > drill.ended_at,
        )
    )
    if later is not None:
        return list(findings)
    evidence = [
        Evidence(
            "DrillCheck",
            f"drill-{drill.id}-{c.id}",
            None,
            f"{ITEMS[c.item].label if c.item in ITEMS else c.item}: {c.subject}: {c.summary}",
        )
        for c in failed
    ]
    failure = finding(
        ATTESTATION_TOPIC,
        Status.fail,
        f"Disconnect drill #{drill.id} on {drill.ended_at:%Y-%m-%d} failed {len(failed)} item(s); "
        "fix them and run another drill.",
        evidence,
    )
    return [failure if f.check_id == ATTESTATION_TOPIC else f for f in findings]
