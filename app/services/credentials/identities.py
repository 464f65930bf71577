"""Lifeline's own x509 identities per cluster, made while the Region is reachable so that issuing and
reading keep working when IAM cannot sign anyone in: `lifeline:issuer` (CSRs, approval for the
client signer, the bindings it makes, `bind` only on the ClusterRoles it may grant) and
`lifeline:reader` (read-only on what the readiness checks need, never secrets).

Their certificates are ordinary `Credential` rows (kind issuer/reader) issued through the CSR API
by the same steps as a person's; keys sealed with the data key. This module says what the identities
are, when one is due, and how an admin revokes or re-enables one; `runs` drives the cluster work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.kube.types import Identity, KubeAuth
from app.integrations.vault import Vault
from app.models import Cluster, ClusterIdentity, Credential
from app.models.base import utcnow
from app.services.audit import Actor, record_audit
from app.services.credentials.keys import open_key
from app.services.credentials.vocabulary import (
    ISSUER,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OWN_PURPOSES,
    READER,
    CredentialInputError,
    IssueRequest,
    NotOwner,
)

CSR_GROUP = "certificates.k8s.io"
RBAC_GROUP = "rbac.authorization.k8s.io"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
_READ = ["get", "list", "watch"]

# What the readiness poller lists (app.jobs.readiness.RESOURCES) plus ConfigMaps (the VPC CNI's
# settings); a test keeps the two in step. Secrets are deliberately absent.
READER_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": [
            "configmaps",
            "namespaces",
            "nodes",
            "persistentvolumeclaims",
            "persistentvolumes",
            "pods",
            "replicationcontrollers",
            "serviceaccounts",
            "services",
        ],
        "verbs": _READ,
    },
    {
        "apiGroups": ["apps"],
        "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"],
        "verbs": _READ,
    },
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": _READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _READ},
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": _READ},
    {"apiGroups": ["snapshot.storage.k8s.io"], "resources": ["volumesnapshotclasses"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses", "ingresses"], "verbs": _READ},
    {
        "apiGroups": [RBAC_GROUP],
        "resources": ["clusterrolebindings", "clusterroles", "rolebindings", "roles"],
        "verbs": _READ,
    },
    {"apiGroups": [CSR_GROUP], "resources": ["certificatesigningrequests"], "verbs": _READ},
    {"apiGroups": ["elbv2.k8s.aws"], "resources": ["targetgroupbindings"], "verbs": _READ},
)


def issuer_rules(grantable_roles: Sequence[str]) -> list[dict[str, Any]]:
    """The issuer's ClusterRole: exactly what issuing, verifying, revoking and crash clean-up call.

    RBAC cannot limit `create` or `list` to labelled objects, so the binding verbs apply to every
    ClusterRoleBinding; what a binding may *grant* is limited by `bind` on the named roles (the API
    server refuses a binding to any other role, since the issuer holds none of their permissions).
    """
    return [
        {
            "apiGroups": [CSR_GROUP],
            "resources": ["certificatesigningrequests"],
            "verbs": [*_READ, "create", "delete"],
        },
        {"apiGroups": [CSR_GROUP], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
        {
            "apiGroups": [CSR_GROUP],
            "resources": ["signers"],
            "resourceNames": [CLIENT_SIGNER],
            "verbs": ["approve"],
        },
        {
            "apiGroups": [RBAC_GROUP],
            "resources": ["clusterrolebindings"],
            "verbs": ["create", "get", "list", "delete"],
        },
        # Issuing checks that the requested ClusterRole exists before binding it, and refuses a group
        # that a binding Lifeline does not manage already names (policy.py), so it reads RoleBindings.
        {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["get", "list"]},
        {"apiGroups": [RBAC_GROUP], "resources": ["rolebindings"], "verbs": ["get", "list"]},
        {
            "apiGroups": [RBAC_GROUP],
            "resources": ["clusterroles"],
            "resourceNames": sorted(grantable_roles),
            "verbs": ["bind"],
        },
        # The effective-rights check of a certificate from an uploaded CSR (no key to act as it).
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]


_RULE_FIELDS = ("apiGroups", "resources", "resourceNames", "nonResourceURLs", "verbs")


def _rule_key(rule: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    # The API server may return the lists in another order or omit an empty one: same rule.
    return tuple(tuple(sorted(str(v) for v in rule.get(f) or ())) for f in _RULE_FIELDS)


def describe_rule(rule: dict[str, Any]) -> str:
    groups = ",".join(rule.get("apiGroups") or ()) or "core"
    names = f" named {','.join(rule['resourceNames'])}" if rule.get("resourceNames") else ""
    return f"{','.join(rule.get('verbs') or ())} {groups}/{','.join(rule.get('resources') or ())}{names}"


def role_drift(found: list[dict[str, Any]] | None, wanted: list[dict[str, Any]]) -> list[str]:
    """How a ClusterRole on the cluster differs from the rules Lifeline writes (`missing: ...`,
    `extra: ...`), empty when they match; a role written by an older version lacks newer rules."""
    if found is None:
        return ["the ClusterRole is missing"]
    have = {_rule_key(r): r for r in found}
    want = {_rule_key(r): r for r in wanted}
    return [f"missing: {describe_rule(r)}" for k, r in want.items() if k not in have] + [
        f"extra: {describe_rule(r)}" for k, r in have.items() if k not in want
    ]


def record_role_repair(session: Session, identity: ClusterIdentity, drift: list[str], actor: Actor) -> None:
    """The audit row of an upkeep that rewrote the identity's ClusterRole because it had drifted."""
    record_audit(
        session,
        actor=actor,
        action="identity.role_updated",
        target=f"cluster:{identity.cluster_pk}",
        details={
            "cluster": identity.cluster.name,
            "identity": username_of(identity.purpose),
            "cluster_role": identity.cluster_role,
            "drift": drift,
        },
    )
    session.flush()


def username_of(purpose: str) -> str:
    return f"lifeline:{purpose}"


def rules_for(identity: ClusterIdentity) -> list[dict[str, Any]]:
    if identity.purpose == ISSUER:
        return issuer_rules([str(r) for r in identity.grantable_roles])
    return [dict(rule) for rule in READER_RULES]


ROLE_LABELS = {MANAGED_BY_LABEL: MANAGED_BY}


# ---------------------------------------------------------------- rows and what is due


def ensure_identity(
    session: Session, cluster: Cluster, purpose: str, grantable_roles: Sequence[str]
) -> ClusterIdentity:
    """The cluster's identity row for `purpose` (created enabled); the issuer's grantable roles follow
    the setting, so a changed setting rewrites its ClusterRole on the next upkeep."""
    row = session.scalar(
        select(ClusterIdentity).where(
            ClusterIdentity.cluster_pk == cluster.id, ClusterIdentity.purpose == purpose
        )
    )
    wanted = sorted(grantable_roles) if purpose == ISSUER else []
    if row is None:
        row = ClusterIdentity(
            cluster_pk=cluster.id, purpose=purpose, cluster_role=username_of(purpose), grantable_roles=wanted
        )
        session.add(row)
        session.flush()
    return row


def current_credential(session: Session, cluster_pk: int, purpose: str) -> Credential | None:
    """The identity's active certificate (the newest, should a renewal overlap)."""
    return session.scalar(
        select(Credential)
        .where(Credential.cluster_pk == cluster_pk, Credential.kind == purpose, Credential.status == "active")
        .order_by(Credential.id.desc())
        .limit(1)
    )


def issuing_credential(session: Session, cluster_pk: int, purpose: str) -> Credential | None:
    return session.scalar(
        select(Credential).where(
            Credential.cluster_pk == cluster_pk, Credential.kind == purpose, Credential.status == "issuing"
        )
    )


@dataclass(frozen=True)
class Due:
    """What the upkeep job should do for one identity: nothing, issue, or renew `credential_id`."""

    action: str  # "none" | "issue" | "renew"
    reason: str
    credential_id: int | None = None
    role_stale: bool = False


def due(session: Session, identity: ClusterIdentity, grantable_roles: Sequence[str], now: dt.datetime) -> Due:
    """Issue when there is no valid certificate, renew when less than a third of its life is left
    (well before expiry, so a disconnect that starts now still has most of a lifetime ahead)."""
    wanted = sorted(grantable_roles) if identity.purpose == ISSUER else []
    stale = sorted(str(r) for r in identity.grantable_roles) != wanted
    if not identity.enabled:
        return Due("none", "revoked by an admin")
    if issuing_credential(session, identity.cluster_pk, identity.purpose) is not None:
        return Due("none", "a certificate is being issued")
    credential = current_credential(session, identity.cluster_pk, identity.purpose)
    if credential is None or credential.not_after is None or credential.not_after <= now:
        return Due("issue", "no valid certificate", role_stale=True)
    assert credential.not_before is not None
    lifetime = credential.not_after - credential.not_before
    if credential.not_after - now < lifetime / 3:
        return Due("renew", f"expires {credential.not_after:%Y-%m-%d %H:%M} UTC", credential.id, stale)
    return Due("none", "valid", credential.id, stale)


def issue_request(identity: ClusterIdentity, lifetime_seconds: int) -> IssueRequest:
    return IssueRequest(
        cluster_pk=identity.cluster_pk,
        username=username_of(identity.purpose),
        group=None,
        cluster_role=identity.cluster_role,
        lifetime_seconds=lifetime_seconds,
        kind=identity.purpose,
    )


def own_identity(session: Session, vault: Vault | None, cluster_pk: int, purpose: str) -> Identity | None:
    """The identity's certificate and key for connecting (None without a valid one or a data key)."""
    if vault is None:
        return None
    credential = current_credential(session, cluster_pk, purpose)
    if credential is None or credential.certificate_pem is None:
        return None
    if credential.not_after is not None and credential.not_after <= utcnow():
        return None
    key = open_key(credential, vault)
    source = f"Lifeline's own {purpose} identity ({username_of(purpose)})"
    return Identity(KubeAuth.x509(credential.certificate_pem, key.decode()), source)


# ---------------------------------------------------------------- what pages show


@dataclass(frozen=True)
class IdentityView:
    purpose: str
    username: str
    cluster_role: str
    grantable_roles: tuple[str, ...]
    enabled: bool
    credential: Credential | None
    issuing: bool
    last_error: str | None
    revoked_at: dt.datetime | None
    revoked_by: str | None
    last_attempt_at: dt.datetime | None


def identity_views(session: Session, cluster: Cluster) -> list[IdentityView]:
    """Both identities of a cluster as the cluster page shows them (a missing row reads as 'not yet')."""
    rows = {
        row.purpose: row
        for row in session.scalars(select(ClusterIdentity).where(ClusterIdentity.cluster_pk == cluster.id))
    }
    views = []
    for purpose in OWN_PURPOSES:
        row = rows.get(purpose)
        views.append(
            IdentityView(
                purpose=purpose,
                username=username_of(purpose),
                cluster_role=row.cluster_role if row else username_of(purpose),
                grantable_roles=tuple(str(r) for r in (row.grantable_roles if row else ())),
                enabled=row.enabled if row else True,
                credential=current_credential(session, cluster.id, purpose),
                issuing=issuing_credential(session, cluster.id, purpose) is not None,
                last_error=row.last_error if row else None,
                revoked_at=row.revoked_at if row else None,
                revoked_by=row.revoked_by if row else None,
                last_attempt_at=row.last_attempt_at if row else None,
            )
        )
    return views


def get_identity_or_none(session: Session, cluster_pk: int, purpose: str) -> ClusterIdentity | None:
    return session.scalar(
        select(ClusterIdentity).where(
            ClusterIdentity.cluster_pk == cluster_pk, ClusterIdentity.purpose == purpose
        )
    )


def get_identity(session: Session, cluster_pk: int, purpose: str) -> ClusterIdentity:
    if purpose not in OWN_PURPOSES:
        raise CredentialInputError(f"unknown identity {purpose!r}: issuer or reader", field="purpose")
    row = session.scalar(
        select(ClusterIdentity).where(
            ClusterIdentity.cluster_pk == cluster_pk, ClusterIdentity.purpose == purpose
        )
    )
    if row is None:
        cluster = session.get(Cluster, cluster_pk)
        if cluster is None:
            raise CredentialInputError("no such cluster", field="cluster")
        row = ensure_identity(session, cluster, purpose, [])
    return row


def set_enabled(session: Session, identity: ClusterIdentity, actor: Actor, *, enabled: bool) -> None:
    """Mark the identity revoked (the upkeep job leaves it alone) or enabled again; audited."""
    if not actor.is_admin:
        raise NotOwner("only an admin can revoke or re-enable Lifeline's own identities")
    identity.enabled = enabled
    if enabled:
        identity.revoked_at = identity.revoked_by = None
    else:
        identity.revoked_at, identity.revoked_by = utcnow(), actor.name
    record_audit(
        session,
        actor=actor,
        action="identity.enable" if enabled else "identity.revoke",
        target=f"cluster:{identity.cluster_pk}",
        details={
            "cluster": identity.cluster.name,
            "identity": username_of(identity.purpose),
            "cluster_role": identity.cluster_role,
            "via": actor.via,
        },
    )
    session.flush()


def record_attempt(identity: ClusterIdentity, error: str | None) -> None:
    identity.last_attempt_at = utcnow()
    identity.last_error = error


__all__ = ["ISSUER", "OWN_PURPOSES", "READER"]
