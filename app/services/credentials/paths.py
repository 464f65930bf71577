"""Whether issuing can work on a cluster right now, and through which identity, said before the
form is submitted. Read from the database and settings only (no cluster call), so the answer is
instant and works offline: the last readiness poll says whether IAM works, the connectivity state
whether the Outpost is cut off, and Lifeline's own issuer identity whether the x509 path is ready.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.integrations.kube.kubeconfig import KubeconfigError, read_kubeconfig
from app.models import Cluster, ClusterIdentity, Credential
from app.models.base import utcnow
from app.services.connectivity.status import DISCONNECTED
from app.services.credentials import identities
from app.services.credentials.keys import vault_from_settings
from app.services.errors import ServiceError
from app.services.readiness.records import get_state
from app.settings import Settings


@dataclass(frozen=True)
class IssuingPath:
    """`can`: True (it will work), False (it cannot now) or None (not known yet)."""

    can: bool | None
    headline: str
    detail: str = ""
    grantable: tuple[str, ...] = ()

    @property
    def tone(self) -> str:
        return {True: "ok", False: "bad", None: "warn"}[self.can]


def _override(settings: Settings, endpoint: str) -> str | None:
    if settings.issuer_kubeconfig is None:
        return None
    try:
        entry = read_kubeconfig(settings.issuer_kubeconfig).for_server(endpoint)
    except KubeconfigError:
        return None
    return entry.context or str(settings.issuer_kubeconfig) if entry is not None else None


def issuing_path(session: Session, settings: Settings, cluster: Cluster | None) -> IssuingPath | None:
    """What the form says about issuing on `cluster` now (None before a cluster is chosen)."""
    if cluster is None:
        return None
    if not cluster.endpoint or not cluster.certificate_authority:
        return IssuingPath(
            False,
            f"No way to issue on {cluster.name} now: its endpoint and CA are not cached.",
            "Discovery caches them while AWS is reachable.",
        )
    override = _override(settings, cluster.endpoint)
    if override is not None:
        return IssuingPath(True, f"Lifeline will issue with LIFELINE_ISSUER_KUBECONFIG (context {override}).")
    now = utcnow()
    state = get_state(session, cluster)
    outpost_cut_off = cluster.outpost is not None and cluster.outpost.state == DISCONNECTED
    iam_failed = state is not None and state.last_polled_at is not None and state.auth_path != "iam"
    iam_reason = (state.iam_error if state else None) or ""
    credential = identities.current_credential(session, cluster.id, identities.ISSUER)
    row = identities.get_identity_or_none(session, cluster.id, identities.ISSUER)
    own_ok, own_problem = _own_usable(settings, credential, row, now)
    grantable = tuple(str(r) for r in row.grantable_roles) if row is not None else ()
    own_until = (
        f"valid until {credential.not_after:%Y-%m-%d %H:%M} UTC"
        if credential is not None and credential.not_after
        else ""
    )
    if iam_failed or outpost_cut_off:
        why = "IAM unavailable"
        if outpost_cut_off:
            why += f" (Outpost {cluster.outpost.outpost_id if cluster.outpost else ''} disconnected)"
        elif iam_reason:
            why += f" ({iam_reason[:160]})"
        if own_ok:
            return IssuingPath(
                True,
                f"{why}; Lifeline will issue with its own x509 issuer identity, {own_until}.",
                "It can bind only the ClusterRoles listed below.",
                grantable,
            )
        return IssuingPath(
            False,
            f"No way to issue now: {why}, and {own_problem}.",
            "Use an existing break-glass credential, or set LIFELINE_ISSUER_KUBECONFIG to an admin "
            "kubeconfig for this cluster.",
        )
    fallback = (
        f" Should IAM fail, Lifeline's own x509 issuer identity takes over ({own_until})."
        if own_ok
        else f" Should IAM fail, issuing would stop: {own_problem}."
    )
    if state is None or state.last_polled_at is None:
        return IssuingPath(None, "Not polled yet: Lifeline will try its EKS IAM token." + fallback)
    return IssuingPath(
        True,
        f"IAM worked at the last poll ({_ago(now, state.last_polled_at)}); Lifeline will issue with its "
        "EKS IAM token." + fallback,
    )


def _own_usable(settings: Settings, credential: object, row: object, now: dt.datetime) -> tuple[bool, str]:

    assert credential is None or isinstance(credential, Credential)
    assert row is None or isinstance(row, ClusterIdentity)
    if row is not None and not row.enabled:
        return False, "Lifeline's own issuer identity was revoked by an admin"
    if credential is None or credential.not_after is None or credential.not_after <= now:
        reason = f" ({row.last_error})" if row is not None and row.last_error else ""
        return False, f"Lifeline has no issuer identity of its own on this cluster yet{reason}"
    try:
        if vault_from_settings(settings) is None:
            return False, "no data key is configured to open Lifeline's issuer key"
    except ServiceError as exc:
        return False, f"the data key does not load ({exc.message})"
    return True, ""


def _ago(now: dt.datetime, then: dt.datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def issuing_path_for(session: Session, settings: Settings, cluster_value: object) -> IssuingPath | None:
    """The notice for the form's selected cluster (the raw form value: an id, or empty)."""
    text = str(cluster_value or "")
    return issuing_path(session, settings, session.get(Cluster, int(text))) if text.isdigit() else None
