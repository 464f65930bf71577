"""The readiness vocabulary: findings, their status and severity, and the cluster snapshot checks read.

Everything here is a frozen dataclass so a snapshot can be shared by every check (and threads)
without copying; checks are pure functions of (snapshot, context).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.integrations.readiness_aws import AlarmFact, CertificateFact, InstanceNetworkLimits
from app.services.readiness.pods import PodDigest

__all__ = [
    "AlarmFact",
    "AwsFacts",
    "CertificateFact",
    "CheckContext",
    "ClusterFacts",
    "ClusterSnapshot",
    "CredentialFact",
    "Evidence",
    "Finding",
    "InstanceNetworkLimits",
    "Severity",
    "Status",
]


class Status(enum.StrEnum):
    passed = "pass"
    warn = "warn"
    fail = "fail"
    unknown = "unknown"
    accepted = "accepted"


class Severity(enum.StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"

    @property
    def rank(self) -> int:
        return {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}[self.value]

    def shifted(self, steps: int) -> Severity:
        """One or more levels up (positive) or down (negative), clamped to info..critical."""
        order = [Severity.info, Severity.low, Severity.medium, Severity.high, Severity.critical]
        return order[max(0, min(len(order) - 1, self.rank + steps))]


@dataclass(frozen=True)
class Evidence:
    """One object involved in a finding, and what about it matters."""

    kind: str
    name: str
    namespace: str | None = None
    detail: str = ""

    @property
    def ref(self) -> str:
        """`Kind/namespace/name` (or `Kind/name` for cluster-scoped objects): the exemption target."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class Finding:
    check_id: str
    title: str
    severity: Severity
    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()
    remediation: str = ""
    guide_section: str = ""
    # Set when the status is `accepted`: who accepted the risk, why, until when.
    exemption: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "severity": self.severity.value,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": [item.as_dict() for item in self.evidence],
            "remediation": self.remediation,
            "guide_section": self.guide_section,
            "exemption": dict(self.exemption) if self.exemption else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            check_id=str(data["check_id"]),
            title=str(data["title"]),
            severity=Severity(data["severity"]),
            status=Status(data["status"]),
            summary=str(data.get("summary", "")),
            evidence=tuple(
                Evidence(
                    kind=str(item["kind"]),
                    name=str(item["name"]),
                    namespace=item.get("namespace"),
                    detail=str(item.get("detail", "")),
                )
                for item in data.get("evidence", ())
            ),
            remediation=str(data.get("remediation", "")),
            guide_section=str(data.get("guide_section", "")),
            exemption=data.get("exemption"),
        )


# ---------------------------------------------------------------- AWS and Lifeline facts


@dataclass(frozen=True)
class ClusterFacts:
    """What DescribeCluster said (cached on the Cluster row so it survives a disconnect)."""

    status: str | None = None
    endpoint: str | None = None
    cluster_uid: str | None = None
    platform_version: str | None = None
    control_plane_instance_type: str | None = None
    outpost_id: str | None = None
    health_issues: tuple[Mapping[str, Any], ...] = ()
    # When the status was last seen to change (to spot a cluster stuck in CREATING/UPDATING).
    status_since: dt.datetime | None = None


@dataclass(frozen=True)
class CredentialFact:
    """An x509 credential Lifeline holds for the cluster (from the credentials feature)."""

    name: str
    kind: str  # breakglass | fallback
    not_after: dt.datetime
    verified: bool
    revoked: bool = False


@dataclass(frozen=True)
class AwsFacts:
    """Facts from AWS and from Lifeline's own records; None means "not collected", not "none"."""

    cluster: ClusterFacts | None = None
    eni_ips: tuple[str, ...] | None = None
    resolved_ips: tuple[str, ...] | None = None
    resolve_error: str | None = None
    alarms: tuple[AlarmFact, ...] | None = None
    instance_types: Mapping[str, InstanceNetworkLimits] | None = None
    certificates: Mapping[str, CertificateFact] | None = None
    control_plane_slots_available: int | None = None
    credentials: tuple[CredentialFact, ...] | None = None


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything the checks read about one cluster, from a live poll or a manifest dump.

    Pods are kept as a `PodDigest` (pods grouped by owner and template) so a 5,000-pod cluster
    costs the memory of its distinct workloads, not of its pods.
    """

    cluster_name: str
    objects: Mapping[str, tuple[Mapping[str, Any], ...]]
    pods: PodDigest
    live: bool = False
    aws: AwsFacts = field(default_factory=AwsFacts)
    collected_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def of_kind(self, kind: str) -> tuple[Mapping[str, Any], ...]:
        return self.objects.get(kind, ())

    def has_kind(self, kind: str) -> bool:
        """True when objects of `kind` were collected (even zero of them) in a live poll."""
        return kind in self.objects


@dataclass(frozen=True)
class CheckContext:
    """Settings that shape a check: the disconnect horizon, local registries, surge, time."""

    horizon_hours: int = 72
    local_registries: tuple[str, ...] = ()
    surge_percent: int = 25
    stuck_status_hours: int = 6
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def horizon(self) -> dt.timedelta:
        return dt.timedelta(hours=self.horizon_hours)

    @property
    def horizon_shift(self) -> int:
        """How far the horizon moves horizon-sensitive severities: a week or more raises them."""
        if self.horizon_hours >= 168:
            return 1
        if self.horizon_hours < 24:
            return -1
        return 0
