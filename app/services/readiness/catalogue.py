"""The catalogue: every check by ID, attestations, exemptions, and the readiness score.

`evaluate(snapshot, context, exemptions, attestations)` is pure: the same inputs give the same
findings, whether they come from a live poll or `lifeline check --manifests`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from app.services.readiness import (
    checks_access,
    checks_capacity,
    checks_network,
    checks_observability,
    checks_storage,
    checks_workloads,
)
from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Severity, Status
from app.services.readiness.specs import ATTESTATION_TOPICS, finding

CheckFunction = Callable[[ClusterSnapshot, CheckContext], list[Finding]]

CHECKS: dict[str, CheckFunction] = {
    "breakglass-credential": checks_access.check_breakglass_credential,
    "system-masters-binding": checks_access.check_system_masters_binding,
    "fallback-identity": checks_access.check_fallback_identity,
    "endpoint-dns": checks_access.check_endpoint_dns,
    "spare-capacity": checks_capacity.check_spare_capacity,
    "image-sources": checks_workloads.check_image_sources,
    "ebs-workloads": checks_storage.check_ebs_workloads,
    "ebs-snapshots": checks_storage.check_ebs_snapshots,
    "alb-acm-certificates": checks_network.check_alb_acm_certificates,
    "lb-controller-new-pods": checks_network.check_lb_controller_new_pods,
    "vpc-cni-warm-ips": checks_capacity.check_vpc_cni_warm_ips,
    "local-observability": checks_observability.check_local_observability,
    "connected-status-alarm": checks_access.check_connected_status_alarm,
    "iam-dependent-workloads": checks_workloads.check_iam_dependent_workloads,
    "unreachable-toleration": checks_workloads.check_unreachable_toleration,
    "cluster-health": checks_access.check_cluster_health,
    "control-plane-capacity": checks_access.check_control_plane_capacity,
}

# Points a check loses from the score, by severity (see `score`).
SEVERITY_WEIGHT = {
    Severity.critical: 10,
    Severity.high: 5,
    Severity.medium: 3,
    Severity.low: 1,
    Severity.info: 0,
}
STATUS_PENALTY = {
    Status.fail: 1.0,
    Status.warn: 0.5,
    Status.unknown: 0.25,
    Status.passed: 0.0,
    Status.accepted: 0.0,
}


@dataclass(frozen=True)
class ExemptionRule:
    """An accepted risk stored in Lifeline: a whole check, or one object (`Kind/ns/name`)."""

    check_id: str
    target: str
    reason: str
    author: str
    expires_at: dt.datetime
    exemption_id: int | None = None


@dataclass(frozen=True)
class AttestationFact:
    """A person's confirmation of something Lifeline cannot see (etcd backups, local DNS, registry)."""

    topic: str
    statement: str
    author: str
    attested_at: dt.datetime
    expires_at: dt.datetime


def check_attestation(topic: str, attestations: Iterable[AttestationFact], context: CheckContext) -> Finding:
    relevant = sorted((a for a in attestations if a.topic == topic), key=lambda a: a.expires_at)
    if not relevant:
        return finding(topic, Status.warn, "Nobody has attested this yet.")
    latest = relevant[-1]
    ev = [
        Evidence(
            "Attestation",
            latest.author,
            None,
            f"{latest.statement} (attested {latest.attested_at:%Y-%m-%d}, expires "
            f"{latest.expires_at:%Y-%m-%d})",
        )
    ]
    if latest.expires_at <= context.now:
        return finding(topic, Status.warn, f"The attestation by {latest.author} expired.", ev)
    return finding(topic, Status.passed, f"Attested by {latest.author}.", ev)


def unseen_attestations() -> list[Finding]:
    """The attestation topics as `unknown`, for `lifeline check`: attestations live in the dashboard.

    Every topic still appears in the output, so a report has as many findings as the catalogue.
    """
    return [
        finding(
            topic,
            Status.unknown,
            "Attestations are recorded in the dashboard; lifeline check cannot see them.",
        )
        for topic in ATTESTATION_TOPICS
    ]


def apply_exemptions(
    findings: Iterable[Finding], exemptions: Iterable[ExemptionRule], now: dt.datetime
) -> list[Finding]:
    """Mark exempted findings `accepted`; an object exemption removes that object from the evidence."""
    active = [e for e in exemptions if e.expires_at > now]
    result = []
    for item in findings:
        if item.status not in (Status.fail, Status.warn):
            result.append(item)
            continue
        rules = [e for e in active if e.check_id == item.check_id]
        whole = next((e for e in rules if not e.target), None)
        if whole is not None:
            result.append(replace(item, status=Status.accepted, exemption=_describe(whole)))
            continue
        targets = {e.target: e for e in rules}
        kept = tuple(ev for ev in item.evidence if ev.ref not in targets)
        accepted = [targets[ev.ref] for ev in item.evidence if ev.ref in targets]
        if accepted and not kept:
            result.append(replace(item, status=Status.accepted, exemption=_describe(accepted[0])))
        elif accepted:
            dropped = len(item.evidence) - len(kept)
            result.append(
                replace(item, evidence=kept, summary=f"{item.summary} ({dropped} exempted object(s) hidden)")
            )
        else:
            result.append(item)
    return result


def _describe(rule: ExemptionRule) -> dict[str, object]:
    return {
        "id": rule.exemption_id,
        "target": rule.target or None,
        "reason": rule.reason,
        "author": rule.author,
        "expires_at": rule.expires_at.isoformat(),
    }


def evaluate(
    snapshot: ClusterSnapshot,
    context: CheckContext,
    exemptions: Iterable[ExemptionRule] = (),
    attestations: Iterable[AttestationFact] | None = (),
) -> list[Finding]:
    """Run every check (and attestation, when `attestations` is not None) against the snapshot."""
    findings: list[Finding] = []
    for check_id, check in CHECKS.items():
        try:
            findings.extend(check(snapshot, context))
        except Exception as exc:  # a malformed object must not hide every other finding
            findings.append(finding(check_id, Status.unknown, f"The check could not run: {exc!r}"))
    if attestations is not None:
        facts = list(attestations)
        findings.extend(check_attestation(topic, facts, context) for topic in ATTESTATION_TOPICS)
    return apply_exemptions(findings, exemptions, context.now)


def score(findings: Iterable[Finding]) -> int:
    """100 x (1 - lost / possible), where each finding weighs by severity and loses by status.

    Weights: critical 10, high 5, medium 3, low 1, info 0. A fail loses its whole weight, a warn
    half, an unknown a quarter (what cannot be seen is not ready either), pass and accepted none.
    """
    items = list(findings)
    possible = sum(SEVERITY_WEIGHT[f.severity] for f in items)
    if not possible:
        return 100
    lost = sum(SEVERITY_WEIGHT[f.severity] * STATUS_PENALTY[f.status] for f in items)
    return round(100 * (1 - lost / possible))


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    result = {status.value: 0 for status in Status}
    for item in findings:
        result[item.status.value] += 1
    return result


def worst(findings: Iterable[Finding], limit: int = 3) -> list[Finding]:
    """The most urgent failing findings first (fail before warn, then by severity)."""
    order = {Status.fail: 0, Status.warn: 1}
    ranked = [f for f in findings if f.status in order]
    ranked.sort(key=lambda f: (order[f.status], -f.severity.rank, f.check_id))
    return ranked[:limit]


def severity_reached(findings: Iterable[Finding], fail_on: str) -> bool:
    """True when a finding's status reaches `fail_on` (warn: warn or fail; fail: fail only)."""
    statuses = {Status.fail} if fail_on == "fail" else {Status.fail, Status.warn}
    return any(f.status in statuses for f in findings)
