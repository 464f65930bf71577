"""Emergency access: issue, renew, verify and revoke x509 credentials on a cluster, step by step.

Each operation is a list of steps recorded as `CredentialEvent`s; the caller passes `checkpoint`
(a commit at the edge) so the page can show every step as it happens and an issued certificate is
stored the moment it exists. Services flush, never commit. A failure stops at its step, removes
what the run created on the cluster (CSR, binding) and leaves nothing that looks valid.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.integrations import pki
from app.integrations.kube.operations import (
    ClusterAccess,
    ClusterApi,
    ClusterApiError,
    ClusterTarget,
)
from app.integrations.vault import MISSING_KEY_MESSAGE, Vault
from app.models import Cluster, Credential, CredentialEvent
from app.models.base import utcnow
from app.services.audit import ClientInfo, Outcome, record_audit

log = logging.getLogger(__name__)

DEFAULT_GROUP = "lifeline:breakglass"
FALLBACK_USER = "lifeline:fallback"
FALLBACK_GROUP = "lifeline:fallback"
FALLBACK_ROLE = "view"
BUILTIN_ROLES = ("cluster-admin", "admin", "edit", "view")
MIN_LIFETIME_SECONDS = 600
DEFAULT_LIFETIME_DAYS = 365
LONG_LIFETIME_DAYS = 90
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "outpost-lifeline"
CREDENTIAL_LABEL = "lifeline.outpost/credential-id"
USAGES = ("digital signature", "client auth")
SERVER = "server"
UPLOADED = "uploaded-csr"

ISSUE_STEPS = ("csr_created", "approved", "certificate_issued", "binding_created", "verified", "stored")
STEP_LABELS = {
    "requested": "Request accepted",
    "csr_created": "CertificateSigningRequest created",
    "approved": "CSR approved",
    "certificate_issued": "Certificate issued",
    "binding_created": "ClusterRoleBinding created",
    "verified": "Verified against the cluster",
    "stored": "Stored",
    "binding_checked": "ClusterRoleBinding present",
    "binding_deleted": "ClusterRoleBinding deleted",
    "cleanup": "Clean-up",
}
REVOKE_NOTICE = (
    "The ClusterRoleBinding is deleted, so this identity can no longer do anything RBAC grants it. "
    "The certificate itself stays valid for authentication until it expires: Kubernetes has no "
    "revocation for client certificates. Prefer short lifetimes and renew them."
)

Checkpoint = Callable[[], None]


class CredentialError(Exception):
    """A request was refused; `field` names the form field at fault (None: the whole request)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CredentialNotFound(CredentialError):
    pass


class StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class Actor:
    """Who acts: the signed-in user or API token owner (None user id for the system/CLI)."""

    user_id: int | None
    username: str
    is_admin: bool
    via_token: bool = False
    client: ClientInfo | None = None


@dataclass(frozen=True)
class IssueRequest:
    cluster_pk: int
    username: str
    group: str | None
    cluster_role: str
    lifetime_seconds: int
    key_type: str = pki.KeyType.ecdsa_p256.value
    custody: str = SERVER
    csr_pem: str | None = None
    kind: str = "breakglass"


@dataclass(frozen=True)
class ExpiryWarning:
    credential_id: int
    cluster_name: str
    username: str
    not_after: dt.datetime
    days_left: int
    level: str  # "bad" (7 days or less, or expired) or "warn" (30 days or less)


def default_identity(username: str) -> str:
    return f"lifeline:{username}"


def lifetime_warning(lifetime_seconds: int) -> str | None:
    days = lifetime_seconds / 86400
    if days > LONG_LIFETIME_DAYS:
        return (
            f"A {days:.0f}-day certificate cannot be revoked: whoever copies it can authenticate until it "
            f"expires (deleting the binding removes its permissions). Prefer {LONG_LIFETIME_DAYS} days or "
            "less and renew."
        )
    return None


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@-]{0,126}[A-Za-z0-9]$")


def _check_name(value: str, field: str, what: str) -> None:
    if not _NAME_RE.match(value):
        raise CredentialError(
            f"{what} {value!r} must be 2-128 characters of letters, digits and : . _ @ -", field=field
        )
    if value.startswith("system:"):
        if value == "system:masters":
            raise CredentialError(
                "system:masters is refused: Kubernetes rejects it for client certificates and its members "
                "bypass RBAC, so the access could never be revoked",
                field=field,
            )
        raise CredentialError(f"{what} {value!r} is in Kubernetes' reserved 'system:' namespace", field=field)


def slug(value: str) -> str:
    text = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")
    return text[:60] or "user"


def validate_request(
    session: Session, request: IssueRequest, actor: Actor, *, max_lifetime_days: int, has_vault: bool
) -> IssueRequest:
    """Check an issue request; returns it normalised (an uploaded CSR decides identity and group)."""
    cluster = session.get(Cluster, request.cluster_pk)
    if cluster is None:
        raise CredentialError("no such cluster", field="cluster")
    if not cluster.endpoint or not cluster.certificate_authority:
        raise CredentialError(
            f"cluster {cluster.name} has no endpoint or CA cached yet: run discovery while AWS is reachable",
            field="cluster",
        )
    if request.lifetime_seconds < MIN_LIFETIME_SECONDS:
        raise CredentialError("lifetime must be at least 10 minutes (Kubernetes' minimum)", field="lifetime")
    if request.lifetime_seconds > max_lifetime_days * 86400:
        raise CredentialError(
            f"lifetime must be at most {max_lifetime_days} days (LIFELINE_CREDENTIAL_MAX_LIFETIME_DAYS)",
            field="lifetime",
        )
    _check_name(request.cluster_role, "cluster_role", "ClusterRole")
    normalised = replace(
        request, username=request.username.strip(), group=(request.group or "").strip() or None
    )
    if request.custody == UPLOADED:
        if not request.csr_pem or not request.csr_pem.strip():
            raise CredentialError("upload the CSR (PEM) made with your own key", field="csr")
        try:
            info = pki.validate_csr(request.csr_pem)
        except pki.PkiError as exc:
            raise CredentialError(f"uploaded CSR refused: {exc}", field="csr") from None
        if len(info.organizations) > 1:
            raise CredentialError("the CSR names several organisations (O); use one group", field="csr")
        normalised = replace(
            normalised,
            username=info.common_name,
            group=info.organizations[0] if info.organizations else None,
            key_type=info.key_type,
            csr_pem=info.pem,
        )
    elif request.custody == SERVER:
        if request.key_type not in {k.value for k in pki.KeyType}:
            raise CredentialError(f"unknown key type {request.key_type!r}", field="key_type")
        if not has_vault:
            raise CredentialError(MISSING_KEY_MESSAGE, field="custody")
        normalised = replace(normalised, csr_pem=None)
    else:
        raise CredentialError("custody must be 'server' or 'uploaded-csr'", field="custody")
    _check_name(normalised.username, "username", "identity")
    if normalised.group is not None:
        _check_name(normalised.group, "group", "group")
    if (
        normalised.kind == "breakglass"
        and not actor.is_admin
        and normalised.username != default_identity(actor.username)
    ):
        raise CredentialError(
            "responders issue credentials only for themselves: the identity must be "
            f"{default_identity(actor.username)}",
            field="username",
        )
    existing = _current_for(session, cluster.id, normalised.username)
    if existing is not None:
        raise CredentialError(
            f"{normalised.username} already has credential #{existing.id} ({existing.status}) "
            f"on {cluster.name}: "
            "renew or revoke it (RBAC binds the name, so two certificates for one name could not be "
            "revoked separately)",
            field="username",
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
        issued_by=actor.username,
        binding_name=f"lifeline:{slug(request.username.removeprefix('lifeline:'))}",
        control_plane_ips=[],
        download_count=0,
    )
    session.add(credential)
    session.flush()
    if request.custody == SERVER:
        assert vault is not None
        _new_server_key(credential, vault)
    session.add(
        CredentialEvent(
            credential_id=credential.id,
            run=1,
            operation="issue",
            step="requested",
            state="done",
            message=_describe_request(credential, cluster),
            actor=actor.username,
        )
    )
    session.flush()
    return credential


def _describe_request(credential: Credential, cluster: Cluster) -> str:
    group = f" in group {credential.group_name}" if credential.group_name else ""
    days = credential.requested_lifetime_seconds / 86400
    lifetime = f"{days:.0f} days" if days >= 1 else f"{credential.requested_lifetime_seconds // 60} minutes"
    return (
        f"{credential.username}{group} on {cluster.name}, ClusterRole {credential.cluster_role}, "
        f"{credential.key_type} key ({'held by Lifeline' if credential.custody == SERVER else 'your own'}), "
        f"{lifetime}"
    )


def _new_server_key(credential: Credential, vault: Vault) -> None:
    key = pki.generate_private_key(pki.KeyType(credential.key_type))
    groups = (credential.group_name,) if credential.group_name else ()
    credential.csr_pem = pki.build_csr(key.pem, credential.username, groups)
    credential.encrypted_key = vault.seal(key.pem, context=key_context(credential.id))


def key_context(credential_id: int) -> str:
    return f"credential:{credential_id}"


def open_key(credential: Credential, vault: Vault) -> bytes:
    if credential.encrypted_key is None:
        raise CredentialError("Lifeline holds no key for this credential")
    return vault.open(credential.encrypted_key, context=key_context(credential.id))


# ------------------------------------------------------------------ step runner


class _Run:
    """One operation's steps, each recorded as it starts and ends (checkpoint makes it visible)."""

    def __init__(
        self, session: Session, credential: Credential, operation: str, actor: Actor, checkpoint: Checkpoint
    ) -> None:
        self.session, self.credential, self.operation = session, credential, operation
        self.actor, self.checkpoint = actor, checkpoint
        events = list(
            session.scalars(select(CredentialEvent).where(CredentialEvent.credential_id == credential.id))
        )
        last = max((e.run for e in events), default=0)
        # The run that recorded only the request continues with its steps.
        only_requested = last > 0 and all(e.step == "requested" for e in events if e.run == last)
        self.number = last if only_requested else last + 1

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Run a step; append to the yielded list to set its message. StepFailed marks it failed."""
        event = CredentialEvent(
            credential_id=self.credential.id,
            run=self.number,
            operation=self.operation,
            step=name,
            state="running",
            message="",
            actor=self.actor.username,
        )
        self.session.add(event)
        self.session.flush()
        self.checkpoint()
        note: list[str] = []
        try:
            yield note
        except StepFailed as exc:
            event.state, event.message = "failed", str(exc)
            self.session.flush()
            raise
        except ClusterApiError as exc:
            event.state, event.message = "failed", str(exc)
            self.session.flush()
            raise StepFailed(name, str(exc)) from None
        event.state = "skipped" if note and note[0].startswith("skipped:") else "done"
        event.message = " ".join(note).removeprefix("skipped: ")
        event.at = utcnow()
        self.session.flush()
        self.checkpoint()


@dataclass(frozen=True)
class Timing:
    signing_timeout: float = 30.0
    poll_interval: float = 0.2


def target_of(cluster: Cluster) -> ClusterTarget:
    if not cluster.endpoint or not cluster.certificate_authority:
        raise ClusterApiError(f"cluster {cluster.name} has no cached endpoint or CA")
    return ClusterTarget(
        name=cluster.name,
        region=cluster.region,
        endpoint=cluster.endpoint,
        certificate_authority=cluster.certificate_authority,
        cluster_uid=cluster.cluster_uid,
    )


def _wait_for_certificate(api: ClusterApi, name: str, timing: Timing) -> str:
    deadline = time.monotonic() + timing.signing_timeout
    while True:
        state = api.read_csr(name)
        if state is None:
            raise StepFailed("certificate_issued", f"CSR {name} disappeared before it was signed")
        for kind in ("Denied", "Failed"):
            cond = state.condition(kind)
            if cond is not None:
                raise StepFailed(
                    "certificate_issued",
                    f"the cluster marked CSR {name} {kind}: "
                    f"{cond.reason or '-'}: {cond.message or 'no message'}",
                )
        if state.certificate_pem:
            return state.certificate_pem
        if time.monotonic() >= deadline:
            if state.condition("Approved") is not None:
                raise StepFailed(
                    "certificate_issued",
                    f"CSR {name} was approved but not signed within {timing.signing_timeout:.0f} s: the "
                    "kube-apiserver-client signer did not act (check its usages and that the controller "
                    "manager is healthy)",
                )
            raise StepFailed("certificate_issued", f"CSR {name} was not approved within the timeout")
        time.sleep(timing.poll_interval)


def _obtain_certificate(run: _Run, api: ClusterApi, cluster: Cluster, timing: Timing) -> pki.CertificateInfo:
    credential = run.credential
    assert credential.csr_pem is not None
    with run.step("csr_created") as note:
        name = f"lifeline-{slug(credential.username)}-{credential.id}-{run.number}-{secrets.token_hex(3)}"
        api.create_csr(
            name,
            credential.csr_pem,
            expiration_seconds=credential.requested_lifetime_seconds,
            usages=USAGES,
            labels={MANAGED_BY_LABEL: MANAGED_BY, CREDENTIAL_LABEL: str(credential.id)},
        )
        credential.csr_name = name
        note.append(f"{name} (signer kubernetes.io/kube-apiserver-client)")
    with run.step("approved") as note:
        message = (
            f"Approved by Outpost Lifeline on behalf of {run.actor.username}: {run.operation} of credential "
            f"#{credential.id} for {credential.username} (ClusterRole {credential.cluster_role})"
        )
        api.approve_csr(name, reason="LifelineApproved", message=message)
        note.append(message)
    with run.step("certificate_issued") as note:
        pem = _wait_for_certificate(api, name, timing)
        try:
            info = pki.parse_certificate(pem)
        except pki.PkiError as exc:
            raise StepFailed(
                "certificate_issued", f"the cluster returned an unreadable certificate: {exc}"
            ) from None
        csr_info = pki.validate_csr(credential.csr_pem)
        if info.public_key_sha256 != csr_info.public_key_sha256 or info.common_name != credential.username:
            raise StepFailed("certificate_issued", "the signed certificate does not match the request")
        # Saved now: Kubernetes deletes approved CSRs after an hour.
        credential.certificate_pem = pem if pem.endswith("\n") else pem + "\n"
        credential.fingerprint_sha256 = info.fingerprint_sha256
        credential.serial_hex = info.serial_hex[:64]
        credential.not_before, credential.not_after = info.not_before, info.not_after
        note.append(
            f"valid until {info.not_after:%Y-%m-%d %H:%M} UTC, SHA-256 {info.fingerprint_sha256[:16]}…"
        )
        if info.lifetime_seconds + 300 < credential.requested_lifetime_seconds:
            note.append(
                f"(the cluster's signer capped the lifetime at {info.lifetime_seconds / 86400:.1f} days)"
            )
    return info


def _ensure_binding(run: _Run, api: ClusterApi, *, renewal: bool) -> bool:
    """Create (or, for a renewal, confirm) the binding; True when this run created it."""
    credential = run.credential
    assert credential.binding_name is not None
    with run.step("binding_created") as note:
        existing = api.read_binding(credential.binding_name)
        if existing is not None:
            if (
                renewal
                and credential.username in existing.users
                and existing.cluster_role == credential.cluster_role
            ):
                note.append(f"{credential.binding_name} kept (same identity and ClusterRole)")
                return False
            raise StepFailed(
                "binding_created",
                f"a ClusterRoleBinding named {credential.binding_name} already exists (ClusterRole "
                f"{existing.cluster_role}); Lifeline does not take over bindings it did not create",
            )
        if credential.cluster_role not in api.cluster_roles():
            raise StepFailed(
                "binding_created", f"ClusterRole {credential.cluster_role} does not exist on the cluster"
            )
        api.create_binding(
            credential.binding_name,
            cluster_role=credential.cluster_role,
            user=credential.username,
            labels={MANAGED_BY_LABEL: MANAGED_BY, CREDENTIAL_LABEL: str(credential.id)},
        )
        note.append(
            f"{credential.binding_name}: User {credential.username} → ClusterRole {credential.cluster_role}"
        )
        return True


def _verify_as_credential(run: _Run, access: ClusterAccess, cluster: Cluster, vault: Vault | None) -> None:
    credential = run.credential
    with run.step("verified") as note:
        if credential.custody != SERVER:
            note.append(
                "skipped: the key is on your machine, so Lifeline cannot sign in with it; check with "
                "`kubectl auth whoami` using the downloaded kubeconfig"
            )
            return
        assert vault is not None and credential.certificate_pem is not None
        message = _check_identity(access, cluster, credential, open_key(credential, vault))
        credential.last_verified_at, credential.last_verified_ok = utcnow(), True
        credential.last_verified_message = message
        note.append(message)


def _check_identity(access: ClusterAccess, cluster: Cluster, credential: Credential, key_pem: bytes) -> str:
    assert credential.certificate_pem is not None
    client = access.as_client(target_of(cluster), credential.certificate_pem, key_pem)
    try:
        version = client.server_version()
        who = client.whoami()
    finally:
        client.close()
    if who.username != credential.username:
        raise StepFailed(
            "verified", f"the cluster sees this certificate as {who.username!r}, not {credential.username!r}"
        )
    if credential.group_name and credential.group_name not in who.groups:
        raise StepFailed("verified", f"the cluster does not report group {credential.group_name!r}")
    return f"/version {version}; SelfSubjectReview: {who.username} ({', '.join(who.groups)})"


def _cleanup(run: _Run, api: ClusterApi | None, *, csr: bool, binding: bool) -> None:
    credential = run.credential
    if api is None or not (csr or binding):
        return
    with run.step("cleanup") as note:
        problems = []
        if csr and credential.csr_name:
            try:
                api.delete_csr(credential.csr_name)
                note.append(f"deleted CSR {credential.csr_name}.")
            except ClusterApiError as exc:
                problems.append(f"CSR {credential.csr_name} could not be deleted: {exc}")
        if binding and credential.binding_name:
            try:
                api.delete_binding(credential.binding_name)
                note.append(f"deleted ClusterRoleBinding {credential.binding_name}.")
            except ClusterApiError as exc:
                problems.append(f"ClusterRoleBinding {credential.binding_name} could not be deleted: {exc}")
        if problems:
            raise StepFailed("cleanup", " ".join(problems) + " Delete it by hand.")


def _audit(
    session: Session, actor: Actor, action: str, credential: Credential, outcome: str, **details: object
) -> None:
    record_audit(
        session,
        actor=actor.username,
        action=action,
        target=f"credential:{credential.id}",
        outcome=outcome,
        client=actor.client,
        details={
            "cluster": credential.cluster.name,
            "identity": credential.username,
            "cluster_role": credential.cluster_role,
            "fingerprint": credential.fingerprint_sha256,
            "via": "api token" if actor.via_token else "browser",
            **details,
        },
    )


def _fail(run: _Run, exc: StepFailed) -> None:
    credential = run.credential
    recorded = run.session.scalar(
        select(CredentialEvent.id).where(
            CredentialEvent.credential_id == credential.id,
            CredentialEvent.run == run.number,
            CredentialEvent.step == exc.step,
        )
    )
    if recorded is None:
        run.session.add(
            CredentialEvent(
                credential_id=credential.id,
                run=run.number,
                operation=run.operation,
                step=exc.step,
                state="failed",
                message=str(exc),
                actor=run.actor.username,
            )
        )
    credential.status = "failed"
    credential.failed_step = exc.step
    credential.error = f"{STEP_LABELS.get(exc.step, exc.step)} failed: {exc}"
    # A half-issued credential must not be usable from Lifeline: drop the key.
    credential.encrypted_key = None
    _audit(
        run.session,
        run.actor,
        f"credential.{run.operation}",
        credential,
        Outcome.failure,
        error=credential.error,
    )
    run.session.flush()
    run.checkpoint()
    log.warning("credential %s %s failed at %s: %s", credential.id, run.operation, exc.step, exc)


def run_issue(
    session: Session,
    credential_id: int,
    actor: Actor,
    access: ClusterAccess,
    vault: Vault | None,
    *,
    checkpoint: Checkpoint,
    timing: Timing = Timing(),
) -> Credential:
    """Issue (or, for a renewal row, re-issue) a credential in steps; ends active or failed."""
    credential = get_credential(session, credential_id)
    cluster = credential.cluster
    renewal_of = session.get(Credential, credential.renewal_of_id) if credential.renewal_of_id else None
    run = _Run(session, credential, "renew" if renewal_of else "issue", actor, checkpoint)
    api: ClusterApi | None = None
    created_binding = False
    try:
        try:
            api = access.issuer(target_of(cluster))
        except ClusterApiError as exc:
            raise StepFailed("csr_created", f"Lifeline cannot act on {cluster.name}: {exc}") from None
        _obtain_certificate(run, api, cluster, timing)
        created_binding = _ensure_binding(run, api, renewal=renewal_of is not None)
        _verify_as_credential(run, access, cluster, vault)
        with run.step("stored") as note:
            credential.status = "active"
            credential.issued_at = utcnow()
            credential.error = credential.failed_step = None
            if renewal_of is not None:
                renewal_of.status = "renewed"
                renewal_of.renewed_at = credential.issued_at
                renewal_of.encrypted_key = None
                note.append(f"replaces credential #{renewal_of.id} (its key is discarded).")
            note.append("ready to download.")
            _audit(session, actor, f"credential.{run.operation}", credential, Outcome.success)
    except StepFailed as exc:
        try:
            _cleanup(run, api, csr=credential.csr_name is not None, binding=created_binding)
        except StepFailed as cleanup_exc:
            exc = StepFailed(exc.step, f"{exc} (clean-up: {cleanup_exc})")
        _fail(run, exc)
    finally:
        if api is not None:
            api.close()
    session.flush()
    return credential


def start_renewal(session: Session, credential_id: int, actor: Actor, vault: Vault | None) -> Credential:
    """A new row for the same identity, ClusterRole and binding, with a new key (server custody)."""
    old = get_credential(session, credential_id)
    _require_owner(old, actor)
    if old.status != "active":
        raise CredentialError(f"only an active credential can be renewed (this one is {old.status})")
    if old.custody == SERVER and vault is None:
        raise CredentialError(MISSING_KEY_MESSAGE)
    if session.scalar(
        select(Credential).where(Credential.renewal_of_id == old.id, Credential.status == "issuing")
    ):
        raise CredentialError("a renewal of this credential is already running")
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
        _new_server_key(new, vault)
    session.add(
        CredentialEvent(
            credential_id=new.id,
            run=1,
            operation="renew",
            step="requested",
            state="done",
            message=f"renewal of credential #{old.id}: " + _describe_request(new, old.cluster),
            actor=actor.username,
        )
    )
    session.flush()
    return new


def verify_credential(
    session: Session,
    credential_id: int,
    actor: Actor,
    access: ClusterAccess,
    vault: Vault | None,
    *,
    checkpoint: Checkpoint,
) -> Credential:
    """Check the binding (as Lifeline) and sign in with the credential (when Lifeline holds the key)."""
    credential = get_credential(session, credential_id)
    _require_owner(credential, actor)
    if credential.status != "active":
        raise CredentialError(f"only an active credential can be verified (this one is {credential.status})")
    run = _Run(session, credential, "verify", actor, checkpoint)
    problems: list[str] = []
    messages: list[str] = []
    try:
        with run.step("binding_checked") as note:
            try:
                api = access.issuer(target_of(credential.cluster))
            except ClusterApiError as exc:
                note.append(f"skipped: Lifeline's issuer identity cannot reach the cluster ({exc})")
                api = None
            if api is not None:
                try:
                    binding = api.read_binding(credential.binding_name or "")
                finally:
                    api.close()
                if binding is None or credential.username not in binding.users:
                    raise StepFailed(
                        "binding_checked", f"ClusterRoleBinding {credential.binding_name} is missing"
                    )
                note.append(f"{binding.name} → ClusterRole {binding.cluster_role}")
                messages.append(f"binding {binding.name} present")
    except StepFailed as exc:
        problems.append(str(exc))
    try:
        with run.step("verified") as note:
            if credential.custody != SERVER:
                note.append(
                    "skipped: the key is on the user's machine; only the binding and expiry are checked"
                )
            else:
                assert vault is not None
                message = _check_identity(access, credential.cluster, credential, open_key(credential, vault))
                note.append(message)
                messages.append(message)
    except StepFailed as exc:
        problems.append(str(exc))
    now = utcnow()
    if credential.not_after and credential.not_after <= now:
        problems.append("the certificate has expired")
    credential.last_verified_at = now
    credential.last_verified_ok = not problems
    credential.last_verified_message = "; ".join(problems or messages or ["nothing could be checked"])
    _audit(
        session, actor, "credential.verify", credential, Outcome.success if not problems else Outcome.failure
    )
    session.flush()
    checkpoint()
    return credential


def revoke_credential(
    session: Session, credential_id: int, actor: Actor, access: ClusterAccess, *, checkpoint: Checkpoint
) -> Credential:
    """Delete the binding; the credential is revoked only when the binding is really gone."""
    credential = get_credential(session, credential_id)
    if not (actor.is_admin or _owns(credential, actor)):
        raise CredentialError("only an admin can revoke another person's credential")
    if credential.status != "active":
        raise CredentialError(f"only an active credential can be revoked (this one is {credential.status})")
    run = _Run(session, credential, "revoke", actor, checkpoint)
    try:
        with run.step("binding_deleted") as note:
            try:
                api = access.issuer(target_of(credential.cluster))
            except ClusterApiError as exc:
                raise StepFailed(
                    "binding_deleted",
                    f"Lifeline cannot act on {credential.cluster.name} ({exc}); nothing was revoked. "
                    f"Delete ClusterRoleBinding {credential.binding_name} with an admin kubeconfig.",
                ) from None
            try:
                existed = api.delete_binding(credential.binding_name or "")
            finally:
                api.close()
            note.append(
                f"{credential.binding_name} deleted."
                if existed
                else f"{credential.binding_name} was already gone."
            )
    except StepFailed as exc:
        _audit(session, actor, "credential.revoke", credential, Outcome.failure, error=str(exc))
        session.flush()
        checkpoint()
        raise CredentialError(str(exc)) from None
    credential.status = "revoked"
    credential.revoked_at = utcnow()
    credential.revoked_by = actor.username
    credential.encrypted_key = None
    _audit(session, actor, "credential.revoke", credential, Outcome.success)
    session.flush()
    checkpoint()
    return credential


# ------------------------------------------------------------------ queries and rules


def get_credential(session: Session, credential_id: int) -> Credential:
    credential = session.get(Credential, credential_id, options=[selectinload(Credential.events)])
    if credential is None:
        raise CredentialNotFound(f"credential {credential_id} does not exist")
    return credential


def _owns(credential: Credential, actor: Actor) -> bool:
    if credential.kind == "fallback":
        return False
    if actor.user_id is not None and credential.issued_by_user_id is not None:
        return credential.issued_by_user_id == actor.user_id
    return credential.issued_by == actor.username


def _require_owner(credential: Credential, actor: Actor) -> None:
    if not (actor.is_admin or _owns(credential, actor)):
        raise CredentialError("responders can act only on credentials they issued")


def can_manage(credential: Credential, actor: Actor) -> bool:
    return actor.is_admin or _owns(credential, actor)


def list_credentials(
    session: Session, *, cluster_pk: int | None = None, include_history: bool = False
) -> list[Credential]:
    stmt = select(Credential).order_by(Credential.created_at.desc(), Credential.id.desc())
    if cluster_pk is not None:
        stmt = stmt.where(Credential.cluster_pk == cluster_pk)
    if not include_history:
        stmt = stmt.where(Credential.status.in_(("issuing", "active", "failed", "revoked")))
    return list(session.scalars(stmt))


def run_events(credential: Credential) -> list[CredentialEvent]:
    """The steps of the latest run (what the live view shows)."""
    if not credential.events:
        return []
    last = max(e.run for e in credential.events)
    return [e for e in credential.events if e.run == last]


def expiry_warnings(
    session: Session, *, cluster_pk: int | None = None, now: dt.datetime | None = None
) -> list[ExpiryWarning]:
    """Active credentials expiring within 30 days (bad within 7 days or expired), soonest first."""
    now = now or utcnow()
    stmt = select(Credential).where(
        Credential.status == "active",
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
