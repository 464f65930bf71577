"""Asking for a credential: checking an issue request, and recording it (or a renewal) as a row in
status issuing, with the server-held key generated and sealed. `issuing` then runs its steps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations import pki
from app.integrations.vault import Vault
from app.models import Cluster, Credential, CredentialEvent
from app.services.audit import Actor
from app.services.credentials import policy
from app.services.credentials.keys import new_server_key
from app.services.credentials.queries import get_credential, require_manager
from app.services.credentials.vocabulary import (
    DEFAULT_GROUP,
    MIN_LIFETIME_SECONDS,
    OWN_KINDS,
    SERVER,
    UPLOADED,
    CredentialConflict,
    CredentialInputError,
    DuplicateCredential,
    IssueRequest,
    NoDataKey,
    binding_name_for,
    default_identity,
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,126}[A-Za-z0-9]$")


def check_name(value: str, field: str, what: str) -> None:
    """A user, group or ClusterRole name Lifeline writes: 2-128 safe characters, none in `system:`."""
    if not _NAME_RE.match(value):
        raise CredentialInputError(
            f"{what} {value!r} must be 2-128 characters of letters, digits and : . _ @ -", field=field
        )
    if value.startswith("system:"):
        if value == "system:masters":
            raise CredentialInputError(
                "system:masters is refused: Kubernetes rejects it for client certificates and its members "
                "bypass RBAC, so the access could never be revoked",
                field=field,
            )
        raise CredentialInputError(
            f"{what} {value!r} is in Kubernetes' reserved 'system:' namespace", field=field
        )


def validate_request(
    session: Session,
    request: IssueRequest,
    actor: Actor,
    *,
    max_lifetime_days: int,
    has_vault: bool,
    allowed_groups: Sequence[str] = (DEFAULT_GROUP,),
) -> IssueRequest:
    """Check an issue request; returns it normalised (an uploaded CSR decides identity and group)."""
    cluster = session.get(Cluster, request.cluster_pk)
    if cluster is None:
        raise CredentialInputError("no such cluster", field="cluster")
    if not cluster.endpoint or not cluster.certificate_authority:
        raise CredentialInputError(
            f"cluster {cluster.name} has no endpoint or CA cached yet: run discovery while AWS is reachable",
            field="cluster",
        )
    if request.lifetime_seconds < MIN_LIFETIME_SECONDS:
        raise CredentialInputError(
            "lifetime must be at least 10 minutes (Kubernetes' minimum)", field="lifetime"
        )
    if request.lifetime_seconds > max_lifetime_days * 86400:
        raise CredentialInputError(
            f"lifetime must be at most {max_lifetime_days} days (LIFELINE_CREDENTIAL_MAX_LIFETIME_DAYS)",
            field="lifetime",
        )
    check_name(request.cluster_role, "cluster_role", "ClusterRole")
    normalised = replace(
        request, username=request.username.strip(), group=(request.group or "").strip() or None
    )
    if request.custody == UPLOADED:
        if not request.csr_pem or not request.csr_pem.strip():
            raise CredentialInputError("upload the CSR (PEM) made with your own key", field="csr")
        try:
            info = pki.validate_csr(request.csr_pem)
        except pki.PkiError as exc:
            raise CredentialInputError(f"uploaded CSR refused: {exc}", field="csr") from None
        if len(info.organizations) > 1:
            raise CredentialInputError("the CSR names several organisations (O); use one group", field="csr")
        normalised = replace(
            normalised,
            username=info.common_name,
            group=info.organizations[0] if info.organizations else None,
            key_type=info.key_type,
            csr_pem=info.pem,
        )
    elif request.custody == SERVER:
        if request.key_type not in {k.value for k in pki.KeyType}:
            raise CredentialInputError(f"unknown key type {request.key_type!r}", field="key_type")
        if not has_vault:
            raise NoDataKey(field="custody")
        normalised = replace(normalised, csr_pem=None)
    else:
        raise CredentialInputError("custody must be 'server' or 'uploaded-csr'", field="custody")
    check_name(normalised.username, "username", "identity")
    if normalised.group is not None:
        check_name(normalised.group, "group", "group")
        policy.check_allowed_group(normalised.group, allowed_groups)
    if (
        normalised.kind == "breakglass"
        and not actor.is_admin
        and normalised.username != default_identity(actor.name)
    ):
        raise CredentialInputError(
            "responders issue credentials only for themselves: the identity must be "
            f"{default_identity(actor.name)}",
            field="username",
        )
    if normalised.kind == "breakglass" and normalised.username in {f"lifeline:{k}" for k in OWN_KINDS}:
        raise CredentialInputError(
            f"{normalised.username} is one of Lifeline's own identities; choose another name",
            field="username",
        )
    existing = _current_for(session, cluster.id, normalised.username)
    if existing is not None:
        raise DuplicateCredential(
            f"{normalised.username} already has credential #{existing.id} ({existing.status}) "
            f"on {cluster.name}: "
            "renew or revoke it (RBAC binds the name, so two certificates for one name could not be "
            "revoked separately)",
            field="username",
            existing_id=existing.id,
        )
    return normalised


def _current_for(session: Session, cluster_pk: int, username: str) -> Credential | None:
    return session.scalar(
        select(Credential).where(
            Credential.cluster_pk == cluster_pk,
            Credential.username == username,
            Credential.status.in_(("issuing", "active")),
        )
    )


def create_credential(
    session: Session, request: IssueRequest, actor: Actor, vault: Vault | None
) -> Credential:
    """Record a validated request (status issuing); a server-held key is generated and sealed here."""
    cluster = session.get(Cluster, request.cluster_pk)
    assert cluster is not None
    credential = Credential(
        cluster_pk=cluster.id,
        kind=request.kind,
        username=request.username,
        group_name=request.group,
        cluster_role=request.cluster_role,
        key_type=request.key_type,
        custody=request.custody,
        csr_pem=request.csr_pem,
        requested_lifetime_seconds=request.lifetime_seconds,
        status="issuing",
        issued_by_user_id=actor.user_id,
        issued_by=actor.name,
        binding_name=binding_name_for(request.username),
        control_plane_ips=[],
        download_count=0,
    )
    session.add(credential)
    session.flush()
    if request.custody == SERVER:
        assert vault is not None
        new_server_key(credential, vault)
    _record_request(session, credential, "issue", _describe_request(credential, cluster), actor)
    return credential


def start_renewal(session: Session, credential_id: int, actor: Actor, vault: Vault | None) -> Credential:
    """A new row for the same identity, ClusterRole and binding, with a new key (server custody)."""
    old = get_credential(session, credential_id)
    require_manager(old, actor, "responders can act only on credentials they issued")
    if old.status != "active":
        raise CredentialConflict(f"only an active credential can be renewed (this one is {old.status})")
    if old.custody == SERVER and vault is None:
        raise NoDataKey()
    if session.scalar(
        select(Credential).where(Credential.renewal_of_id == old.id, Credential.status == "issuing")
    ):
        raise CredentialConflict("a renewal of this credential is already running")
    new = Credential(
        cluster_pk=old.cluster_pk,
        kind=old.kind,
        username=old.username,
        group_name=old.group_name,
        cluster_role=old.cluster_role,
        key_type=old.key_type,
        custody=old.custody,
        # An uploaded CSR is re-submitted: the user's key never leaves their machine.
        csr_pem=old.csr_pem if old.custody == UPLOADED else None,
        requested_lifetime_seconds=old.requested_lifetime_seconds,
        status="issuing",
        issued_by_user_id=actor.user_id
        if not actor.is_admin or old.issued_by_user_id is None
        else old.issued_by_user_id,
        issued_by=old.issued_by,
        binding_name=old.binding_name,
        control_plane_ips=list(old.control_plane_ips),
        download_count=0,
        renewal_of_id=old.id,
    )
    session.add(new)
    session.flush()
    if new.custody == SERVER:
        assert vault is not None
        new_server_key(new, vault)
    message = f"renewal of credential #{old.id}: " + _describe_request(new, old.cluster)
    _record_request(session, new, "renew", message, actor)
    return new


def _record_request(
    session: Session, credential: Credential, operation: str, message: str, actor: Actor
) -> None:
    session.add(
        CredentialEvent(
            credential_id=credential.id,
            run=1,
            operation=operation,
            step="requested",
            state="done",
            message=message,
            actor=actor.name,
        )
    )
    session.flush()


def _describe_request(credential: Credential, cluster: Cluster) -> str:
    group = f" in group {credential.group_name}" if credential.group_name else ""
    days = credential.requested_lifetime_seconds / 86400
    lifetime = f"{days:.0f} days" if days >= 1 else f"{credential.requested_lifetime_seconds // 60} minutes"
    return (
        f"{credential.username}{group} on {cluster.name}, ClusterRole {credential.cluster_role}, "
        f"{credential.key_type} key ({'held by Lifeline' if credential.custody == SERVER else 'your own'}), "
        f"{lifetime}"
    )
