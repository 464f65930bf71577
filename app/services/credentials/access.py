"""Handing credentials out: kubeconfig and bundle downloads (audited), and Lifeline's fallback identity.

Everything here works from the database alone, so it keeps working while AWS is unreachable.
A refused download is itself an audit event; see `Refused` for how it outlives the refusal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.kube import kubeconfig as kc
from app.integrations.vault import Vault
from app.models import Cluster, Credential, CredentialDownload
from app.models.base import utcnow
from app.models.readiness import ClusterReadiness
from app.services.audit import Actor, Outcome, Via, record_audit
from app.services.credentials.intake import create_credential
from app.services.credentials.keys import open_key
from app.services.credentials.queries import can_manage, get_credential
from app.services.credentials.steps import notify_credential
from app.services.credentials.vocabulary import (
    ARTIFACTS,
    FALLBACK_GROUP,
    FALLBACK_ROLE,
    FALLBACK_USER,
    SERVER,
    CredentialConflict,
    CredentialInputError,
    IssueRequest,
    NoDataKey,
    NotOwner,
)
from app.services.errors import ServiceError


@dataclass(frozen=True)
class Download:
    filename: str
    content: bytes
    media_type: str


@dataclass(frozen=True)
class Refused:
    """A refusal that is already on the audit trail (flushed, not committed).

    Returned, not raised: an edge rolls back on an exception, which would erase the very record of
    the attempt. The caller keeps its transaction (the request dependency or `session_scope`
    commits) and then reports `error` as it would report a raised one.
    """

    error: ServiceError


def control_plane_ips(session: Session, credential: Credential) -> tuple[str, ...]:
    """The IPs recorded when the credential was issued, else those the readiness poller last saw."""
    if credential.control_plane_ips:
        return tuple(str(ip) for ip in credential.control_plane_ips)
    readiness = session.get(ClusterReadiness, credential.cluster_pk)
    ips = (readiness.facts or {}).get("eni_ips") if readiness is not None else None
    return tuple(str(ip) for ip in ips) if isinstance(ips, list) else ()


def kubeconfig_spec(
    credential: Credential, key_pem: bytes | None, ips: tuple[str, ...] | None = None
) -> kc.KubeconfigSpec:
    cluster = credential.cluster
    if not cluster.endpoint or not cluster.certificate_authority or not credential.certificate_pem:
        raise CredentialConflict("the cluster's endpoint, CA or the certificate is missing")
    return kc.KubeconfigSpec(
        cluster_name=cluster.name,
        server=cluster.endpoint,
        certificate_authority=cluster.certificate_authority,
        user=credential.username,
        client_certificate_pem=credential.certificate_pem,
        client_key_pem=key_pem,
        control_plane_ips=ips if ips is not None else tuple(str(ip) for ip in credential.control_plane_ips),
    )


def _file_stem(credential: Credential) -> str:
    user = credential.username.replace(":", "_").replace("/", "_")
    return f"{credential.cluster.name}-{user}"


def download_credential(
    session: Session,
    credential_id: int,
    actor: Actor,
    vault: Vault | None,
    artifact: str,
    *,
    now: dt.datetime | None = None,
) -> Download | Refused:
    """Build the kubeconfig or bundle, and record the download (one audit event per download).

    Someone who may not have it gets `Refused` with the denied attempt recorded; other refusals
    (unknown artifact, not active, no or a broken data key) are raised and leave no trace.
    """
    if artifact not in ARTIFACTS:
        raise CredentialInputError(f"unknown download {artifact!r}: kubeconfig or bundle", field="artifact")
    credential = get_credential(session, credential_id)
    target = f"credential:{credential.id}"
    if not can_manage(credential, actor):
        record_audit(
            session,
            actor=actor,
            action="credential.download",
            target=target,
            outcome=Outcome.denied,
            details={"artifact": artifact, "via": actor.via},
        )
        return Refused(NotOwner("responders can download only credentials they issued"))
    if credential.status != "active":
        raise CredentialConflict(
            f"this credential is {credential.status}; only active credentials can be downloaded"
        )
    key_pem: bytes | None = None
    if credential.custody == SERVER:
        if vault is None:
            raise NoDataKey()
        key_pem = open_key(credential, vault)
    spec = kubeconfig_spec(credential, key_pem, control_plane_ips(session, credential))
    now = now or utcnow()
    if artifact == "kubeconfig":
        result = Download(
            f"{_file_stem(credential)}.kubeconfig", kc.build_kubeconfig(spec).encode(), "application/yaml"
        )
    else:
        content = kc.build_bundle(
            spec, not_after=credential.not_after, cluster_role=credential.cluster_role, created=now
        )
        result = Download(f"lifeline-breakglass-{_file_stem(credential)}.zip", content, "application/zip")
    session.add(
        CredentialDownload(
            credential_id=credential.id,
            artifact=artifact,
            user_id=actor.user_id,
            username=actor.name,
            via_token=actor.via == Via.token,
            client_address=(actor.client.address if actor.client else None),
            at=now,
        )
    )
    credential.download_count += 1
    credential.last_downloaded_at = now
    record_audit(
        session,
        actor=actor,
        action="credential.download",
        target=target,
        details={
            "artifact": artifact,
            "cluster": credential.cluster.name,
            "identity": credential.username,
            "fingerprint": credential.fingerprint_sha256,
            "via": actor.via,
        },
        now=now,
    )
    notify_credential(session, actor, "downloaded", credential)
    session.flush()
    return result


def request_fallback_credentials(
    session: Session, actor: Actor, vault: Vault | None, *, lifetime_seconds: int
) -> list[Credential]:
    """Queue Lifeline's own `view` credential for every cluster that has none (one action)."""
    if not actor.is_admin:
        raise NotOwner("only an admin can issue Lifeline's fallback identity")
    if vault is None:
        raise NoDataKey()
    covered = set(
        session.scalars(
            select(Credential.cluster_pk).where(
                Credential.kind == "fallback", Credential.status.in_(("issuing", "active"))
            )
        )
    )
    created = []
    clusters = session.scalars(select(Cluster).order_by(Cluster.name))
    for cluster in clusters:
        if cluster.id in covered or not cluster.endpoint or not cluster.certificate_authority:
            continue
        request = IssueRequest(
            cluster_pk=cluster.id,
            username=FALLBACK_USER,
            group=FALLBACK_GROUP,
            cluster_role=FALLBACK_ROLE,
            lifetime_seconds=lifetime_seconds,
            kind="fallback",
        )
        created.append(create_credential(session, request, actor, vault))
    return created


@dataclass(frozen=True)
class FallbackIdentity:
    certificate_pem: str
    key_pem: bytes
    not_after: dt.datetime | None


def fallback_identity(session: Session, vault: Vault | None, cluster_pk: int) -> FallbackIdentity | None:
    """Lifeline's `view` certificate and key for a cluster, for pollers when IAM authentication fails."""
    if vault is None:
        return None
    credential = session.scalar(
        select(Credential).where(
            Credential.cluster_pk == cluster_pk, Credential.kind == "fallback", Credential.status == "active"
        )
    )
    if credential is None or credential.certificate_pem is None:
        return None
    return FallbackIdentity(credential.certificate_pem, open_key(credential, vault), credential.not_after)
