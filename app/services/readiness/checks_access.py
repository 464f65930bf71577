"""Checks on access and the control plane: credentials, system:masters, DNS, health, capacity, alarm."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from app.integrations.kube.kubeconfig import endpoint_host, hosts_lines
from app.services.readiness.model import (
    CheckContext,
    ClusterSnapshot,
    CredentialFact,
    Evidence,
    Finding,
    Status,
)
from app.services.readiness.objects import distinct_objects, evidence, labels_of
from app.services.readiness.specs import finding

MASTERS = "system:masters"


def _credential_check(
    check_id: str, kinds: tuple[str, ...], snapshot: ClusterSnapshot, context: CheckContext, label: str
) -> list[Finding]:
    credentials = snapshot.aws.credentials
    shift = context.horizon_shift
    if credentials is None:
        return [
            finding(
                check_id,
                Status.unknown,
                f"Lifeline's credential records were not available (run against the dashboard "
                f"database to check the {label}).",
            )
        ]
    usable = [c for c in credentials if c.kind in kinds and not c.revoked and c.not_after > context.now]
    if not usable:
        return [
            finding(check_id, Status.fail, f"No valid {label} exists for this cluster.", horizon_shift=shift)
        ]
    ev = tuple(_credential_evidence(c, context.now) for c in usable)
    verified = [c for c in usable if c.verified]
    if not verified:
        return [
            finding(
                check_id,
                Status.warn,
                f"The {label} has never been verified against the cluster.",
                ev,
                horizon_shift=shift,
            )
        ]
    best = max(verified, key=lambda c: c.not_after)
    remaining = best.not_after - context.now
    if remaining < context.horizon:
        return [
            finding(
                check_id,
                Status.fail,
                f"The longest-lived verified {label} expires in {_days(remaining)}, inside the "
                f"{context.horizon_hours} h disconnect horizon.",
                ev,
                horizon_shift=shift,
            )
        ]
    if remaining < context.horizon * 2:
        return [
            finding(
                check_id,
                Status.warn,
                f"The {label} expires in {_days(remaining)}: less than twice the "
                f"{context.horizon_hours} h horizon; renew it soon.",
                ev,
                horizon_shift=shift,
            )
        ]
    return [finding(check_id, Status.passed, f"A verified {label} is valid for {_days(remaining)}.", ev)]


def _credential_evidence(credential: CredentialFact, now: dt.datetime) -> Evidence:
    state = "verified" if credential.verified else "not verified"
    return Evidence(
        "Credential",
        credential.name,
        None,
        f"{credential.kind}, {state}, expires {credential.not_after:%Y-%m-%d %H:%M} UTC "
        f"(in {_days(credential.not_after - now)})",
    )


def _days(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def check_breakglass_credential(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    return _credential_check(
        "breakglass-credential", ("breakglass",), snapshot, context, "break-glass x509 credential"
    )


def check_fallback_identity(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    # Lifeline's own reader identity is the x509 read path too (app.services.credentials.identities).
    return _credential_check(
        "fallback-identity", ("fallback", "reader"), snapshot, context, "Lifeline fallback x509 identity"
    )


def _csr_organisations(csr: Mapping[str, Any]) -> tuple[str, ...]:
    """The O= values of a CertificateSigningRequest's subject (empty when it cannot be read)."""
    request = str((csr.get("spec") or {}).get("request") or "")
    try:
        parsed = x509.load_pem_x509_csr(base64.b64decode(request))
    except (ValueError, TypeError, binascii.Error):
        return ()
    return tuple(
        str(attr.value) for attr in parsed.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    )


def _csr_state(csr: Mapping[str, Any]) -> str:
    status = csr.get("status") or {}
    if status.get("certificate"):
        return "issued"
    kinds = {str(c.get("type")) for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    return "approved" if "Approved" in kinds else ("denied" if "Denied" in kinds else "pending")


def check_system_masters_binding(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    """The irrevocable risk is a certificate with O=system:masters, not a binding.

    Membership of system:masters comes from a client certificate's organisation (or the cluster
    creator's IAM identity); no binding can add anyone to it, and deleting a certificate's
    bindings does not take its power away. So: fail for CertificateSigningRequests that carry
    O=system:masters and were approved or issued; bindings that name the group are reported as
    redundant (they grant nothing Kubernetes' bootstrap binding does not) but do not fail.
    """
    bindings = (*snapshot.of_kind("ClusterRoleBinding"), *snapshot.of_kind("RoleBinding"))
    csrs = snapshot.of_kind("CertificateSigningRequest")
    masters_certs = [
        evidence(
            csr,
            f"{_csr_state(csr)} certificate request with O={MASTERS}: its holder bypasses RBAC until the "
            "certificate expires, and no binding change revokes it",
        )
        for csr in csrs
        if MASTERS in _csr_organisations(csr) and _csr_state(csr) in ("issued", "approved")
    ]
    redundant = [
        evidence(
            binding,
            f"names group {MASTERS}: redundant (the group is cluster-admin already and membership comes "
            "from a certificate's O=, which this binding cannot grant or revoke)",
        )
        for binding in bindings
        if any(s.get("kind") == "Group" and s.get("name") == MASTERS for s in binding.get("subjects") or [])
        # Kubernetes' own bootstrap binding (cluster-admin -> system:masters) is not a choice anyone made.
        and labels_of(binding).get("kubernetes.io/bootstrapping") != "rbac-defaults"
    ]
    if masters_certs:
        return [
            finding(
                "system-masters-binding",
                Status.fail,
                f"{distinct_objects(masters_certs)} certificate request(s) grant {MASTERS} membership: those "
                "credentials cannot be revoked, only left to expire.",
                masters_certs + redundant,
            )
        ]
    if not bindings and not csrs:
        if snapshot.live and not (
            snapshot.has_kind("ClusterRoleBinding") and snapshot.has_kind("RoleBinding")
        ):
            reason = "the poll could not list RBAC bindings (a view identity cannot list them)"
        else:
            reason = "the data holds no RBAC bindings or certificate requests"
        return [
            finding(
                "system-masters-binding",
                Status.unknown,
                f"Nothing to judge: {reason}. Certificates with O={MASTERS} are the irrevocable risk; "
                "issue break-glass credentials with a revocable group instead.",
            )
        ]
    note = " The IAM identity that created the cluster keeps system:masters invisibly: record who it is."
    if redundant:
        return [
            finding(
                "system-masters-binding",
                Status.passed,
                f"{distinct_objects(redundant)} binding(s) name {MASTERS}, which is harmless but grants "
                f"nothing; no certificate request with O={MASTERS} was seen.{note}",
                redundant,
            )
        ]
    return [
        finding(
            "system-masters-binding",
            Status.passed,
            f"No certificate request with O={MASTERS} among {len(csrs)}, and none of {len(bindings)} "
            f"bindings names it.{note}",
        )
    ]


def check_endpoint_dns(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    facts = snapshot.aws
    endpoint = facts.cluster.endpoint if facts.cluster else None
    if facts.eni_ips is None or endpoint is None:
        return [
            finding(
                "endpoint-dns", Status.unknown, "Needs DescribeCluster and the control-plane ENIs from AWS."
            )
        ]
    host = endpoint_host(endpoint) or endpoint
    eni = tuple(sorted(facts.eni_ips))
    hosts = "; ".join(hosts_lines(endpoint, eni))
    ev = [Evidence("Endpoint", host, None, f"control-plane ENI IPs {', '.join(eni) or 'none found'}")]
    if not eni:
        return [
            finding(
                "endpoint-dns",
                Status.warn,
                f"No network interfaces described 'Amazon EKS {snapshot.cluster_name}' were found; "
                "the static control-plane IPs are unknown.",
                ev,
            )
        ]
    if facts.resolved_ips is None or not facts.resolved_ips:
        reason = facts.resolve_error or "no addresses"
        return [
            finding(
                "endpoint-dns",
                Status.fail,
                f"{host} does not resolve from the dashboard ({reason}). Add to /etc/hosts: {hosts}",
                ev,
            )
        ]
    resolved = set(facts.resolved_ips)
    stray = sorted(resolved - set(eni))
    if stray:
        ev.append(Evidence("Endpoint", host, None, f"resolves to {', '.join(sorted(resolved))}"))
        return [
            finding(
                "endpoint-dns",
                Status.fail,
                f"{host} resolves to {', '.join(stray)}, which are not control-plane ENI IPs. "
                f"Correct DNS or pin it in /etc/hosts: {hosts}",
                ev,
            )
        ]
    return [
        finding(
            "endpoint-dns",
            Status.passed,
            f"{host} resolves to the control-plane IPs. For disconnects without local DNS, "
            f"/etc/hosts lines: {hosts}",
            ev,
        )
    ]


def check_cluster_health(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    cluster = snapshot.aws.cluster
    if cluster is None or cluster.status is None:
        return [finding("cluster-health", Status.unknown, "Needs DescribeCluster from AWS.")]
    name = snapshot.cluster_name
    ev = [
        Evidence(
            "HealthIssue",
            str(issue.get("code", "?")),
            None,
            f"{issue.get('message', '')} {', '.join(issue.get('resourceIds') or [])}".strip(),
        )
        for issue in cluster.health_issues
    ]
    stuck = ""
    if cluster.status in ("CREATING", "UPDATING") and cluster.status_since is not None:
        age = context.now - cluster.status_since
        if age > dt.timedelta(hours=context.stuck_status_hours):
            stuck = f"The cluster has been {cluster.status} for {_days(age)}."
            ev.append(Evidence("Cluster", name, None, stuck))
    if ev:
        summary = f"EKS reports {len(cluster.health_issues)} health issue(s). {stuck}".strip()
        return [finding("cluster-health", Status.fail, summary, ev)]
    if cluster.status not in ("ACTIVE",):
        return [
            finding(
                "cluster-health",
                Status.warn,
                f"The cluster is {cluster.status}.",
                [Evidence("Cluster", name, None, f"status {cluster.status}")],
            )
        ]
    return [finding("cluster-health", Status.passed, "ACTIVE with no health issues.")]


def check_control_plane_capacity(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    cluster = snapshot.aws.cluster
    slots = snapshot.aws.control_plane_slots_available
    if cluster is None or not cluster.control_plane_instance_type or slots is None:
        return [
            finding(
                "control-plane-capacity",
                Status.unknown,
                "Needs the control-plane instance type (DescribeCluster) and the Outpost's "
                "AvailableInstanceType_Count.",
            )
        ]
    itype = cluster.control_plane_instance_type
    ev = [
        Evidence(
            "InstanceType", itype, None, f"{slots} free slot(s) on {cluster.outpost_id or 'the Outpost'}"
        )
    ]
    if slots <= 0:
        return [
            finding(
                "control-plane-capacity",
                Status.fail,
                f"No free {itype} slot: a control-plane replacement would leave the cluster "
                "UPDATING with Insufficient Capacity.",
                ev,
            )
        ]
    return [finding("control-plane-capacity", Status.passed, f"{slots} free {itype} slot(s).", ev)]


def check_connected_status_alarm(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    alarms = snapshot.aws.alarms
    outpost = snapshot.aws.cluster.outpost_id if snapshot.aws.cluster else None
    if alarms is None:
        return [finding("connected-status-alarm", Status.unknown, "Needs CloudWatch DescribeAlarms.")]
    watching = [
        alarm
        for alarm in alarms
        if alarm.metric_name == "ConnectedStatus"
        and alarm.namespace == "AWS/Outposts"
        and (outpost is None or alarm.dimensions.get("OutpostId") == outpost)
    ]
    if not watching:
        target = outpost or "this cluster's Outpost"
        return [
            finding(
                "connected-status-alarm",
                Status.fail,
                f"No CloudWatch alarm watches ConnectedStatus for {target}.",
                [Evidence("Outpost", target, None, "no ConnectedStatus alarm")],
            )
        ]
    ev = []
    weak = []
    for alarm in watching:
        problems = []
        if not alarm.actions:
            problems.append("no alarm actions")
        if alarm.treat_missing_data not in (None, "missing", "breaching"):
            problems.append(f"TreatMissingData={alarm.treat_missing_data} hides a silent Outpost")
        if alarm.comparison != "LessThanThreshold" or alarm.threshold > 1:
            problems.append(f"{alarm.comparison} {alarm.threshold:g} does not fire on Average < 1")
        ev.append(Evidence("Alarm", alarm.name, None, "; ".join(problems) or f"state {alarm.state}"))
        if problems:
            weak.append(alarm)
    if len(weak) == len(watching):
        return [
            finding(
                "connected-status-alarm",
                Status.warn,
                "ConnectedStatus alarms exist but none would reliably notify someone.",
                ev,
            )
        ]
    return [
        finding(
            "connected-status-alarm",
            Status.passed,
            f"{len(watching) - len(weak)} alarm(s) watch ConnectedStatus.",
            ev,
        )
    ]


__all__ = [
    "check_breakglass_credential",
    "check_cluster_health",
    "check_connected_status_alarm",
    "check_control_plane_capacity",
    "check_endpoint_dns",
    "check_fallback_identity",
    "check_system_masters_binding",
]
