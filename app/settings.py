"""Every setting Lifeline reads, from `LIFELINE_*` environment variables (or a `.env` file).

A bad value stops start-up with a message that names the setting (see `load_settings`).
"""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """Raised when the environment holds an invalid setting; the message names each one."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIFELINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # database
    database_url: str = Field(
        default="sqlite:///./lifeline.db",
        description="SQLAlchemy URL; SQLite for one process, postgresql+psycopg://... in production.",
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")

    # web
    host: str = Field(default="127.0.0.1", description="Address `lifeline serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `lifeline serve` listens on.")
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public URL of the dashboard, used in links."
    )
    demo_mode: bool = Field(default=False, description="Set by `lifeline demo`: shows the demo banner.")

    # aws
    aws_endpoint_url: str | None = Field(
        default=None,
        description="Points every boto3 client at this endpoint (moto, a VPC endpoint); empty: AWS default.",
    )
    aws_regions: list[str] = Field(
        default_factory=list,
        description="Regions to discover local clusters in, added to the fleet file's `discovery.regions`.",
    )
    aws_connect_timeout_seconds: float = Field(default=5.0, gt=0, description="boto3 connect timeout.")
    aws_read_timeout_seconds: float = Field(default=30.0, gt=0, description="boto3 read timeout.")
    aws_max_attempts: int = Field(default=4, ge=1, le=20, description="boto3 standard-mode retry attempts.")

    # polling
    poll_interval_seconds: int = Field(
        default=60, ge=10, le=3600, description="How often ConnectedStatus is polled."
    )
    poll_trailing_window_minutes: int = Field(
        default=15, ge=3, le=180, description="Minutes re-read on every poll to pick up late datapoints."
    )
    fleet_file: Path | None = Field(
        default=None, description="YAML fleet file (GitOps); applied at start-up and on every poll."
    )
    raw_retention_days: int = Field(
        default=15, ge=1, le=455, description="Days raw 60-second samples are kept."
    )
    rollup_retention_days: int = Field(
        default=730, ge=1, description="Days hourly rollups and incidents are kept."
    )
    poll_backfill_max_days: int = Field(
        default=63,
        ge=1,
        le=63,
        description="After a gap, how far back a poll backfills (60 s periods to 15 days, 300 s to 63).",
    )
    poll_initial_backfill_hours: int = Field(
        default=24, ge=0, le=24 * 63, description="History fetched the first time an Outpost is polled."
    )
    poll_run_retention_days: int = Field(default=30, ge=1, description="Days poll-run records are kept.")
    poll_hole_recheck_minutes: int = Field(
        default=30, ge=1, le=1440, description="How often holes in stored history are re-asked for."
    )
    poll_hole_requests: int = Field(
        default=2, ge=0, le=100, description="GetMetricData requests one hole re-check may spend."
    )

    # connectivity pages
    overview_cache_seconds: int = Field(
        default=15,
        ge=0,
        le=300,
        description=(
            "Seconds the overview table, the Outpost page's history, the GET /api/v1/outposts answer"
            " and the cut-off banner are reused between polls, and the overview and an Outpost page"
            " whole per sign-in and URL (0: read and render every request)."
        ),
    )
    overview_refresh_seconds: int = Field(
        default=30, ge=1, le=3600, description="How often an open overview page refreshes its table."
    )
    overview_page_size: int = Field(
        default=50, ge=10, le=1000, description="Outpost rows per overview page (worst first by default)."
    )

    # security and accounts
    session_idle_minutes: int = Field(
        default=60, ge=1, le=10080, description="A session ends after this many minutes without a request."
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=720, description="A session ends this many hours after sign-in, active or not."
    )
    session_cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Secure flag on cookies: auto sets it when the request came over HTTPS.",
    )
    reauth_minutes: int = Field(
        default=5, ge=1, le=60, description="How long a 'confirm your password' stays valid."
    )
    login_free_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Failed sign-ins per account before back-off starts (x3 per address).",
    )
    login_backoff_base_seconds: float = Field(
        default=2.0, gt=0, le=60, description="First back-off delay; doubles with every further failure."
    )
    login_backoff_max_seconds: float = Field(
        default=900.0, gt=0, description="Longest back-off delay after repeated failed sign-ins."
    )
    login_failure_window_minutes: int = Field(
        default=15, ge=1, description="Failures older than this are forgotten."
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics needs `Authorization: Bearer <token>`."
    )

    # emergency access (credentials)
    data_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes (AES-256-GCM) encrypting server-held private keys at rest.",
    )
    data_key_file: Path | None = Field(
        default=None, description="File holding the data key (used when LIFELINE_DATA_KEY is empty)."
    )
    issuer_kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig Lifeline uses to issue certificates on clusters whose endpoint it lists; "
        "other clusters are reached with an EKS IAM token.",
    )
    credential_signing_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="How long to wait for a signed certificate after approval."
    )
    credential_max_lifetime_days: int = Field(
        default=3650, ge=1, description="Longest certificate lifetime a user may request."
    )
    own_identities: bool = Field(
        default=True,
        description="While connected, give Lifeline its own least-privilege x509 identities per cluster "
        "(lifeline:issuer to issue during a disconnect, lifeline:reader for the readiness poller).",
    )
    own_identity_lifetime_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Lifetime of Lifeline's own identities; renewed when a third of it is left.",
    )
    own_identity_check_minutes: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="How often the upkeep job creates or renews Lifeline's identities.",
    )
    issuer_grantable_roles: list[str] = Field(
        default_factory=lambda: ["cluster-admin", "admin", "edit", "view"],
        description="ClusterRoles Lifeline's own issuer may bind (`bind` resourceNames; a JSON list).",
    )
    # durability (issue 11)
    credential_stale_seconds: int = Field(
        default=300,
        ge=5,
        le=86400,
        description="An `issuing` credential whose last step is older than this was interrupted by a "
        "crash: the scheduler cleans up what it created on the cluster and ends it failed.",
    )

    # readiness
    readiness_horizon_hours: int = Field(
        default=72, ge=1, le=24 * 90, description="Default disconnect horizon (hours) that scales severity."
    )
    readiness_local_registries: list[str] = Field(
        default_factory=list,
        description="Registries or mirrors reachable while disconnected (a JSON list of hosts).",
    )
    readiness_surge_percent: int = Field(
        default=25,
        ge=0,
        le=1000,
        description="Extra load (percent) the cluster must absorb while disconnected.",
    )
    readiness_poll_interval_seconds: int = Field(
        default=300, ge=30, le=86400, description="How often each cluster is polled for readiness."
    )
    readiness_poll_concurrency: int = Field(
        default=4, ge=1, le=64, description="Clusters polled at the same time."
    )
    readiness_page_size: int = Field(
        default=500, ge=10, le=5000, description="Objects per Kubernetes list request (limit/continue)."
    )
    readiness_kube_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Connect/read timeout for each Kubernetes API request."
    )
    readiness_x509_kubeconfig_dir: Path | None = Field(
        default=None,
        description="Directory of operator-provided x509 kubeconfigs, `<cluster>.yaml`, used when IAM fails "
        "and no fallback identity exists yet.",
    )
    readiness_stuck_status_hours: int = Field(
        default=6, ge=1, description="Hours in CREATING/UPDATING after which cluster-health fails."
    )
    readiness_history_days: int = Field(
        default=90, ge=1, description="Days of per-poll readiness samples kept."
    )

    # single sign-on (issue 18)
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL; set it (with the client ID) to turn SSO on."
    )
    oidc_client_id: str | None = Field(default=None, description="Lifeline's client ID at the IdP.")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="The client secret (never logged)."
    )
    oidc_client_secret_file: Path | None = Field(
        default=None,
        description="File holding the client secret (used when LIFELINE_OIDC_CLIENT_SECRET is empty).",
    )
    oidc_scopes: str = Field(
        default="openid email profile groups", description="Scopes asked for at sign-in."
    )
    oidc_role_claim: str = Field(default="groups", description="ID token claim listing the person's groups.")
    oidc_admin_groups: list[str] = Field(
        default_factory=list, description="Groups that make an admin (JSON list)."
    )
    oidc_responder_groups: list[str] = Field(
        default_factory=list, description="Groups that make a responder (JSON list)."
    )
    oidc_viewer_groups: list[str] = Field(
        default_factory=list, description="Groups that make a viewer (JSON list)."
    )
    oidc_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of every request to the IdP."
    )
    oidc_cache_minutes: int = Field(
        default=60, ge=1, le=10080, description="How long discovery and JWKS are reused before refetching."
    )
    break_glass_totp_required: bool = Field(
        default=False,
        description=(
            "Break-glass admins must use TOTP while SSO is on, whatever the Sign-in policy page says "
            "(off: the page decides)."
        ),
    )

    # notifications (issue 16): add settings below this line
    notify_send_interval_seconds: int = Field(
        default=10, ge=1, le=3600, description="How often the sender looks for due notification deliveries."
    )
    notify_retry_base_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="First retry delay of a failed delivery (doubles each time)."
    )
    notify_retry_max_seconds: float = Field(
        default=600.0, gt=0, le=86400, description="Longest delay between retries; deliveries never give up."
    )
    notify_lease_seconds: int = Field(
        default=120, ge=5, le=3600, description="Seconds a sender holds a claimed delivery."
    )
    notify_flap_hold_seconds: int = Field(
        default=300, ge=0, le=86400, description="Seconds an Outpost stays connected before recovered."
    )
    notify_unknown_after_minutes: int = Field(
        default=10, ge=1, le=10080, description="Minutes of UNKNOWN state before an 'unknown' notification."
    )
    notify_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Connect and read timeout of each notification send."
    )

    # site probes (issue 13): add settings below this line
    vantage: str = Field(
        default_factory=lambda: socket.gethostname()[:64] or "dashboard",
        min_length=1,
        max_length=64,
        description="Where this dashboard runs (e.g. plant7-datacenter, us-west-2); recorded with every "
        "probe result so replicas sharing one database keep their views apart. Default: the host name.",
    )
    probe_interval_seconds: int = Field(
        default=10, ge=2, le=600, description="How often the site probes run (seconds)."
    )
    probes_enabled: bool = Field(
        default=True, description="Run the site probes (AWS endpoints, cluster APIs)."
    )
    probe_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="Connect/read timeout of each probe request."
    )
    probe_concurrency: int = Field(default=8, ge=1, le=64, description="Probes running at the same time.")
    probe_hysteresis: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Consecutive observations needed before the site view changes state (both ways).",
    )
    probe_confirm_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="When an observation differs from the state, re-probe after this delay instead of "
        "waiting a whole interval.",
    )
    probe_control_plane_ips: bool = Field(
        default=True,
        description="Also probe each known control-plane IP (TLS and /livez), not only the endpoint.",
    )

    # Disconnect drills (issue 17)
    drill_valid_days: int = Field(
        default=90,
        ge=1,
        le=400,
        description="How long a passed drill counts as a readiness attestation (access verified).",
    )
    drill_check_interval_seconds: int = Field(
        default=30, ge=5, le=3600, description="How often Lifeline runs a running drill's checks."
    )
    drill_issue_lifetime_seconds: int = Field(
        default=600,
        ge=600,
        le=86400,
        description="Lifetime of the credential a drill issues (and revokes) to prove issuing works.",
    )

    # security (issue 12): add settings below this line
    credential_allowed_groups: list[str] = Field(
        default_factory=lambda: ["lifeline:breakglass"],
        description="Groups (certificate O) a credential may carry (JSON list); a group that a binding "
        "Lifeline does not manage already names is refused even when listed.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies whose X-Forwarded-For is believed (JSON list); default "
        "none: the TCP peer is the client.",
    )
    password_hash_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Password checks (Argon2, 64 MiB each) running at once; more answer 429 with "
        "Retry-After.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Without LIFELINE_METRICS_TOKEN, /metrics shows per-Outpost series to anyone when "
        "true; when false (default) anonymous callers get the aggregate series only.",
    )

    @field_validator("data_key", "data_key_file", "issuer_kubeconfig", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("aws_endpoint_url", "metrics_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or CIDR (e.g. 127.0.0.1/32)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("fleet_file")
    @classmethod
    def _fleet_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist")
        return value


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation error into one line per bad `LIFELINE_*` setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "?"
            lines.append(f"LIFELINE_{field.upper()}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


__all__ = ["SecretStr", "Settings", "SettingsError", "get_settings", "load_settings"]
