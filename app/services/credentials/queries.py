"""Reading credentials: one by id, the inventory, the latest run's steps, expiry warnings, and who may
manage which credential."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import Cluster, Credential, CredentialEvent
from app.models.base import utcnow
from app.services.audit import Actor
from app.services.credentials.vocabulary import (
    OWN_KINDS,
    OWN_PURPOSES,
    CredentialNotFound,
    ExpiryWarning,
    NotOwner,
)
from app.services.readiness.records import find_cluster


def get_credential(session: Session, credential_id: int) -> Credential:
    credential = session.get(Credential, credential_id, options=[selectinload(Credential.events)])
    if credential is None:
        raise CredentialNotFound(f"credential {credential_id} does not exist")
    return credential


def find_cluster_for_path(session: Session, cluster: str, region: str | None = None) -> Cluster:
    """The cluster an API path names: its row id, else its name (`region` settles a shared name)."""
    if cluster.isdigit():
        row = session.get(Cluster, int(cluster))
        if row is not None:
            return row
    return find_cluster(session, cluster, region)


def owns(credential: Credential, actor: Actor) -> bool:
    """True when `actor` issued it (Lifeline's own identities belong to nobody)."""
    if credential.kind in OWN_KINDS:
        return False
    if actor.user_id is not None and credential.issued_by_user_id is not None:
        return credential.issued_by_user_id == actor.user_id
    return credential.issued_by == actor.name


def can_manage(credential: Credential, actor: Actor) -> bool:
    return actor.is_admin or owns(credential, actor)


def require_manager(credential: Credential, actor: Actor, message: str) -> None:
    if not can_manage(credential, actor):
        raise NotOwner(message)


def list_credentials(
    session: Session,
    *,
    cluster_pk: int | None = None,
    include_history: bool = False,
    issued_by: str | None = None,
    people_only: bool = False,
) -> list[Credential]:
    """The inventory, newest first; `issued_by` keeps one person's (the account name that issued).

    `people_only` leaves out Lifeline's own issuer and reader identities (the cluster's readiness
    page lists those); the fallback `view` identity stays, since people use it too."""
    stmt = select(Credential).order_by(Credential.created_at.desc(), Credential.id.desc())
    if people_only:
        stmt = stmt.where(Credential.kind.not_in(OWN_PURPOSES))
    if cluster_pk is not None:
        stmt = stmt.where(Credential.cluster_pk == cluster_pk)
    if issued_by:
        stmt = stmt.where(Credential.issued_by == issued_by)
    if not include_history:
        stmt = stmt.where(Credential.status.in_(("issuing", "active", "failed", "revoked")))
    return list(session.scalars(stmt))


def issuers(session: Session) -> list[str]:
    """Everyone who issued a credential (the inventory's person filter), by name."""
    stmt = (
        select(Credential.issued_by)
        .where(Credential.kind.not_in(OWN_PURPOSES))
        .distinct()
        .order_by(Credential.issued_by)
    )
    return [name for name in session.scalars(stmt) if name]


def list_clusters(session: Session, *, issuable_only: bool = False) -> list[Cluster]:
    """Clusters by name; `issuable_only` keeps those whose endpoint and CA are cached."""
    clusters = list(session.scalars(select(Cluster).order_by(Cluster.name)))
    if issuable_only:
        return [c for c in clusters if c.endpoint and c.certificate_authority]
    return clusters


def clusters_without_fallback(clusters: list[Cluster], rows: list[Credential]) -> list[str]:
    """Names of issuable clusters on which Lifeline's own fallback identity is neither active nor coming."""
    return [
        c.name
        for c in clusters
        if c.endpoint
        and c.certificate_authority
        and not any(
            r.cluster_pk == c.id and r.kind == "fallback" and r.status in ("active", "issuing") for r in rows
        )
    ]


def latest_renewal(session: Session, credential: Credential) -> Credential | None:
    return session.scalar(
        select(Credential)
        .where(Credential.renewal_of_id == credential.id)
        .order_by(Credential.id.desc())
        .limit(1)
    )


def active_credential_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Credential.id).where(Credential.status == "active")))


def run_events(credential: Credential) -> list[CredentialEvent]:
    """The steps of the latest run (what the live view shows)."""
    if not credential.events:
        return []
    last = max(e.run for e in credential.events)
    return [e for e in credential.events if e.run == last]


def expiry_warnings(
    session: Session, *, cluster_pk: int | None = None, now: dt.datetime | None = None
) -> list[ExpiryWarning]:
    """Active credentials expiring within 30 days (bad within 7 days or expired), soonest first.

    Lifeline's own issuer and reader identities are left out: the upkeep job renews them itself."""
    now = now or utcnow()
    stmt = select(Credential).where(
        Credential.status == "active",
        Credential.kind.not_in(OWN_PURPOSES),
        Credential.not_after.is_not(None),
        Credential.not_after < now + dt.timedelta(days=30),
    )
    if cluster_pk is not None:
        stmt = stmt.where(Credential.cluster_pk == cluster_pk)
    warnings = []
    for credential in session.scalars(stmt.order_by(Credential.not_after)):
        assert credential.not_after is not None
        days = int((credential.not_after - now).total_seconds() // 86400)
        warnings.append(
            ExpiryWarning(
                credential_id=credential.id,
                cluster_name=credential.cluster.name,
                username=credential.username,
                not_after=credential.not_after,
                days_left=days,
                level="bad" if days < 7 else "warn",
            )
        )
    return warnings
