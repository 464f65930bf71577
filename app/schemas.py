"""pydantic models for forms and the JSON API, one section per feature."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from app.integrations.pki import KeyType
from app.services.credentials.vocabulary import (
    DEFAULT_GROUP,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_ROLE,
    MIN_LIFETIME_SECONDS,
)
from app.services.fleet import rules

if TYPE_CHECKING:
    from app.models import Credential, CredentialEvent

# fleet


def _check(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


class OutpostCreate(BaseModel):
    """An Outpost added through the API (source: manual)."""

    outpost_id: str = Field(examples=["op-0123456789abcdef0"], description="op- + 17 lower-case hex digits")
    name: str = Field(examples=["Plant 7, rack A"], max_length=rules.NAME_MAX)
    region: str = Field(examples=["us-west-2"])
    account_id: str | None = Field(default=None, examples=["123456789012"], description="12 digits")

    @field_validator("outpost_id", "name", "region", "account_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("outpost_id")
    @classmethod
    def _outpost_id(cls, value: str) -> str:
        _check(rules.outpost_id_problem(value))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(rules.name_problem(value))
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        _check(rules.region_problem(value))
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        _check(rules.account_id_problem(value))
        return value or None


class OutpostUpdate(BaseModel):
    """Fields to change on an Outpost; omitted fields stay, `account_id: null` clears the account."""

    name: str | None = Field(default=None, max_length=rules.NAME_MAX)
    account_id: str | None = Field(default=None, examples=["123456789012"])

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip()
            _check(rules.name_problem(value))
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        value = value.strip() if value else None
        _check(rules.account_id_problem(value))
        return value


class ClusterCreate(BaseModel):
    """A local cluster added through the API (source: manual)."""

    name: str = Field(examples=["plant7-local"])
    region: str = Field(examples=["us-west-2"])
    outpost_id: str | None = Field(default=None, examples=["op-0123456789abcdef0"])

    @field_validator("name", "region", "outpost_id", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(rules.cluster_name_problem(value))
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        _check(rules.region_problem(value))
        return value

    @field_validator("outpost_id")
    @classmethod
    def _outpost_id(cls, value: str | None) -> str | None:
        if value:
            _check(rules.outpost_id_problem(value))
        return value or None


class FleetOutpostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    outpost_id: str
    name: str
    region: str
    account_id: str | None
    source: str = Field(description="file, manual or discovery")
    state: str
    clusters: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


class HealthIssueOut(BaseModel):
    code: str
    message: str
    resource_ids: list[str] = []


class FleetClusterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    region: str
    outpost_id: str | None
    source: str = Field(description="file, manual or discovery")
    cluster_uid: str | None = Field(description="The local cluster's ID (DescribeCluster `id`)")
    endpoint: str | None
    status: str | None = Field(description="EKS status, or NOT_FOUND when discovery no longer sees it")
    platform_version: str | None
    kubernetes_version: str | None
    control_plane_instance_type: str | None
    health_issues: list[HealthIssueOut]
    has_certificate_authority: bool
    described_at: dt.datetime | None


class PollRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job: str
    scope: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    error: str | None
    requests: int
    items: int


class FleetOut(BaseModel):
    outposts: list[FleetOutpostOut]
    clusters: list[FleetClusterOut]
    discovery_regions: list[str] = Field(description="Regions discovery runs in (fleet file + settings)")
    discovery_runs: list[PollRunOut] = Field(description="The latest discovery run per region")
    fleet_file: str | None = Field(description="LIFELINE_FLEET_FILE, if set")
    fleet_file_runs: list[PollRunOut] = Field(description="The latest application of the fleet file")


# connectivity

OutpostState = Literal["CONNECTED", "DEGRADED", "DISCONNECTED", "UNKNOWN"]


class UptimeWindows(BaseModel):
    """A value per window; uptime is connected time over known time (null when nothing is known)."""

    model_config = ConfigDict(populate_by_name=True)

    h24: float | None = Field(serialization_alias="24h", validation_alias="24h")
    d7: float | None = Field(serialization_alias="7d", validation_alias="7d")
    d30: float | None = Field(serialization_alias="30d", validation_alias="30d")
    d90: float | None = Field(serialization_alias="90d", validation_alias="90d")


class OutpostOut(BaseModel):
    outpost_id: str = Field(examples=["op-0123456789abcdef0"])
    name: str
    region: str
    account_id: str | None
    state: OutpostState
    state_since: dt.datetime | None = Field(description="When the current state began.")
    last_sample_at: dt.datetime | None = Field(description="Timestamp of the newest datapoint.")
    last_value: float | None = Field(description="The newest ConnectedStatus Average (0..1).")
    last_error: str | None = Field(description="The last polling problem for this Outpost, if any.")
    last_error_at: dt.datetime | None
    uptime: UptimeWindows = Field(description="Connected seconds / known seconds, 0..1, per window.")
    unknown_seconds: UptimeWindows = Field(description="Seconds without any datapoint, per window.")
    uptime_as_of: dt.datetime | None = Field(
        default=None,
        description="Where the uptime windows end: the last poll, which stored them, or when they "
        "were computed for this answer (before the first poll, or once polling stopped).",
    )
    drill_seconds: dict[str, float] = Field(
        default_factory=dict,
        description="Drill time left out of uptime and unknown time, per window (only windows with drills).",
    )
    url: str = Field(description="The Outpost's page on this dashboard.")


class PollStatusOut(BaseModel):
    finished_at: dt.datetime | None
    outcome: str
    error: str | None


class OutpostListOut(BaseModel):
    generated_at: dt.datetime
    last_poll: PollStatusOut | None = Field(description="The latest finished connectivity poll.")
    counts: dict[str, int] = Field(description="Outposts per state, for the whole fleet.")
    total: int = Field(description="Outposts matching the filters, over every page.")
    limit: int = Field(description="The most Outposts one page holds.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page (by name, then ID); null on the last page."
    )
    outposts: list[OutpostOut]


class IncidentOut(BaseModel):
    started_at: dt.datetime
    ended_at: dt.datetime | None = Field(description="Null while the incident is ongoing.")
    ongoing: bool
    duration_seconds: float = Field(description="To the end, or to the last sample below 1 if ongoing.")
    worst_value: float = Field(description="The lowest ConnectedStatus Average seen (0 = disconnected).")


class OutpostDetailOut(OutpostOut):
    open_incident: IncidentOut | None


class IncidentListOut(BaseModel):
    outpost_id: str
    incidents: list[IncidentOut]
    has_more: bool = Field(description="True when older incidents exist beyond this page.")
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null on the last."
    )


class SampleOut(BaseModel):
    ts: dt.datetime = Field(description="Start of the period the Average covers.")
    value: float
    period_seconds: int


class SampleListOut(BaseModel):
    outpost_id: str
    start: dt.datetime
    end: dt.datetime
    samples: list[SampleOut]


# accounts


class MeOut(BaseModel):
    username: str
    role: str
    via_token: bool


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    created_at: dt.datetime
    last_sign_in_at: dt.datetime | None


class TokenOut(BaseModel):
    id: int
    prefix: str
    name: str
    state: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


# audit


class AuditEventOut(BaseModel):
    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    target: str
    outcome: str
    client_address: str | None
    user_agent: str | None
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    items: list[AuditEventOut]
    total: int
    page: int
    per_page: int
    pages: int


# readiness


class EvidenceOut(BaseModel):
    kind: str
    namespace: str | None
    name: str
    detail: str = ""


class FindingOut(BaseModel):
    check_id: str = Field(description="Stable check ID (see the README's checks table)")
    title: str
    severity: str = Field(description="critical, high, medium, low or info")
    status: str = Field(description="pass, warn, fail, unknown or accepted")
    summary: str
    evidence: list[EvidenceOut]
    remediation: str
    guide_section: str
    exemption: dict[str, Any] | None = Field(
        default=None, description="Who accepted the risk, why, until when"
    )


class ClusterReadinessOut(BaseModel):
    name: str
    region: str
    outpost_id: str | None
    status: str | None = Field(description="EKS status (DescribeCluster)")
    reachable: bool | None = Field(description="Whether the last poll reached the Kubernetes API")
    auth_path: str = Field(description="iam, x509 or none: the path that worked on the last poll")
    reachability: str = Field(
        default="not_polled",
        description="not_polled, reachable, cut_off (IAM unavailable, reachable with x509), locked_out "
        "(the API answered but no identity was accepted) or unreachable (the API did not answer)",
    )
    reachability_label: str = Field(default="not polled", description="The same in the pages' words")
    x509_last_ok_at: dt.datetime | None = Field(
        default=None, description="When Lifeline's x509 identity last worked"
    )
    iam_error: str | None
    x509_error: str | None
    score: int | None = Field(description="Readiness score 0-100 (formula in the README)")
    horizon_hours: int
    counts: dict[str, int]
    last_polled_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    worst: list[FindingOut] = Field(description="Up to three most urgent findings")


class ScorePointOut(BaseModel):
    polled_at: dt.datetime
    score: int | None
    reachable: bool
    auth_path: str


class ClusterDetailOut(ClusterReadinessOut):
    nodes: list[dict[str, Any]]
    facts: dict[str, Any]
    findings: list[FindingOut]
    history: list[ScorePointOut]


# credentials


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


# The API has always written datetimes with `isoformat()` ("+00:00", not pydantic's "Z").
IsoDatetime = Annotated[dt.datetime, PlainSerializer(_iso, return_type=str)]


class CredentialIssue(BaseModel):
    """A credential asked for through the API (`POST /api/v1/clusters/{cluster}/credentials`)."""

    identity: str | None = Field(
        default=None, description="Kubernetes user (certificate CN); default lifeline:<you>"
    )
    group: str | None = Field(default=DEFAULT_GROUP, description="Kubernetes group (certificate O)")
    cluster_role: str = DEFAULT_ROLE
    lifetime_seconds: int = Field(
        default=DEFAULT_LIFETIME_DAYS * 86400,
        ge=MIN_LIFETIME_SECONDS,
        description="default 90 days, the product's advice (a client certificate cannot be revoked)",
    )
    key_type: KeyType = KeyType.ecdsa_p256
    custody: Literal["server", "uploaded-csr"] = "server"
    csr: str | None = Field(default=None, description="PEM CSR when custody is uploaded-csr")


class CredentialClusterOut(BaseModel):
    id: int
    name: str
    region: str


class CredentialStepOut(BaseModel):
    step: str
    state: str = Field(description="running, done, skipped or failed")
    message: str
    at: IsoDatetime | None


class CredentialOut(BaseModel):
    """The API's view of a credential: never the key, never the sealed blob."""

    id: int
    kind: str = Field(description="breakglass, or fallback (Lifeline's own view identity)")
    cluster: CredentialClusterOut
    identity: str
    group: str | None
    cluster_role: str
    key_type: str
    custody: str = Field(description="server (Lifeline holds the key) or uploaded-csr")
    status: str = Field(description="issuing, active, failed, renewed or revoked")
    failed_step: str | None
    error: str | None
    certificate_pem: str | None
    fingerprint_sha256: str | None
    serial: str | None
    not_before: IsoDatetime | None
    not_after: IsoDatetime | None
    requested_lifetime_seconds: int
    binding_name: str | None
    csr_name: str | None
    issued_by: str | None
    issued_at: IsoDatetime | None
    renewal_of: int | None
    last_verified_at: IsoDatetime | None
    last_verified_ok: bool | None
    last_verified_message: str | None
    revoked_at: IsoDatetime | None
    revoked_by: str | None
    downloads: int
    last_downloaded_at: IsoDatetime | None
    control_plane_ips: list[str]
    steps: list[CredentialStepOut] = Field(description="The steps of the latest run")

    @classmethod
    def of(cls, credential: Credential, steps: Sequence[CredentialEvent]) -> Self:
        return cls(
            id=credential.id,
            kind=credential.kind,
            cluster=CredentialClusterOut(
                id=credential.cluster.id, name=credential.cluster.name, region=credential.cluster.region
            ),
            identity=credential.username,
            group=credential.group_name,
            cluster_role=credential.cluster_role,
            key_type=credential.key_type,
            custody=credential.custody,
            status=credential.status,
            failed_step=credential.failed_step,
            error=credential.error,
            certificate_pem=credential.certificate_pem,
            fingerprint_sha256=credential.fingerprint_sha256,
            serial=credential.serial_hex,
            not_before=credential.not_before,
            not_after=credential.not_after,
            requested_lifetime_seconds=credential.requested_lifetime_seconds,
            binding_name=credential.binding_name,
            csr_name=credential.csr_name,
            issued_by=credential.issued_by,
            issued_at=credential.issued_at,
            renewal_of=credential.renewal_of_id,
            last_verified_at=credential.last_verified_at,
            last_verified_ok=credential.last_verified_ok,
            last_verified_message=credential.last_verified_message,
            revoked_at=credential.revoked_at,
            revoked_by=credential.revoked_by,
            downloads=credential.download_count,
            last_downloaded_at=credential.last_downloaded_at,
            control_plane_ips=[str(ip) for ip in credential.control_plane_ips],
            steps=[CredentialStepOut(step=e.step, state=e.state, message=e.message, at=e.at) for e in steps],
        )


class CredentialRevokedOut(CredentialOut):
    notice: str = Field(description="What revoking does and does not do")


# ---------------------------------------------------------------- drills (issue 17)


class DrillCreate(BaseModel):
    """Plan a drill (or start it at once with `start_now`)."""

    model_config = ConfigDict(extra="forbid")

    outpost_id: str = Field(description="The Outpost rehearsing the disconnect, e.g. op-0123456789abcdef0")
    title: str = Field(max_length=200)
    duration_minutes: int = Field(default=60, ge=1, le=1440)
    planned_start: dt.datetime | None = Field(default=None, description="ISO 8601; empty: now")
    ticket_ref: str | None = Field(default=None, max_length=200)
    participants: list[str] = Field(default_factory=list, max_length=50)
    checklist: list[str] | None = Field(default=None, description="item keys; empty: every item")
    exclude_from_uptime: bool = True
    start_now: bool = False


class DrillAbort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class DrillCheckOut(BaseModel):
    id: int
    item: str
    label: str
    subject: str
    status: str
    summary: str
    evidence: list[dict[str, Any]]
    first_checked_at: str | None
    checked_at: str | None
    rounds: int
    confirmed_by: str | None
    confirmed_at: str | None


class DrillOut(BaseModel):
    """A drill and its report (the JSON export has the same shape)."""

    id: int
    title: str
    outpost: dict[str, str]
    state: str
    outcome: str | None
    ticket_ref: str | None
    participants: list[str]
    planned_start: str | None
    duration_minutes: int
    started_at: str | None
    started_by: str | None
    ended_at: str | None
    ended_by: str | None
    abort_reason: str | None
    drill_seconds: float
    excluded_from_uptime: bool
    checks: list[DrillCheckOut]
    failures: list[DrillCheckOut]
    follow_ups: list[str]
    timeline: list[dict[str, Any]]
    generated_at: str
    url: str = ""
