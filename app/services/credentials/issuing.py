"""Issuing and renewing on the cluster: the steps of a recorded request (CSR, approval, certificate,
binding, verification) run until the credential is active or failed.

A failure stops at its step, removes what the run created on the cluster (CSR, binding) and leaves
nothing that looks valid. Services flush, never commit: `runs` commits at each checkpoint.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy.orm import Session

from app.integrations import pki
from app.integrations.kube.operations import ClusterAccess, ClusterApi, ClusterApiError
from app.integrations.vault import Vault
from app.models import Cluster, Credential
from app.models.base import utcnow
from app.services.audit import Actor, Outcome
from app.services.credentials import policy
from app.services.credentials.keys import open_key
from app.services.credentials.queries import get_credential
from app.services.credentials.steps import Checkpoint, Run, audit_credential, check_identity, target_of
from app.services.credentials.vocabulary import (
    CREDENTIAL_LABEL,
    DEFAULT_TIMING,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVER,
    USAGES,
    StepFailed,
    Timing,
    slug,
)


def run_issue(
    session: Session,
    credential_id: int,
    actor: Actor,
    access: ClusterAccess,
    vault: Vault | None,
    *,
    checkpoint: Checkpoint,
    timing: Timing = DEFAULT_TIMING,
) -> Credential:
    """Issue (or, for a renewal row, re-issue) a credential in steps; ends active or failed."""
    credential = get_credential(session, credential_id)
    cluster = credential.cluster
    renewal_of = session.get(Credential, credential.renewal_of_id) if credential.renewal_of_id else None
    run = Run(session, credential, "renew" if renewal_of else "issue", actor, checkpoint)
    api: ClusterApi | None = None
    created_binding = False
    try:
        try:
            api = access.issuer(target_of(cluster))
        except ClusterApiError as exc:
            raise StepFailed("csr_created", f"Lifeline cannot act on {cluster.name}: {exc}") from None
        _obtain_certificate(run, api, timing)
        created_binding = _ensure_binding(run, api, renewal=renewal_of is not None)
        _verify_as_credential(run, access, api, cluster, vault)
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
            audit_credential(session, actor, f"credential.{run.operation}", credential, Outcome.success)
    except StepFailed as exc:
        try:
            run.clean_up(api, csr=credential.csr_name is not None, binding=created_binding)
        except StepFailed as cleanup_exc:
            exc = StepFailed(exc.step, f"{exc} (clean-up: {cleanup_exc})")
        run.fail(exc)
    finally:
        if api is not None:
            api.close()
    session.flush()
    return credential


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


def _obtain_certificate(run: Run, api: ClusterApi, timing: Timing) -> pki.CertificateInfo:
    credential = run.credential
    assert credential.csr_pem is not None
    with run.step("csr_created") as note:
        # Before any certificate exists: a group some other binding names would carry its rights.
        if credential.group_name:
            note.append(policy.check_group_unbound(api, credential.group_name, credential.cluster.name))
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
        acting = getattr(api, "description", "")
        if acting:
            note.append(f"as {acting}")
    with run.step("approved") as note:
        message = (
            f"Approved by Outpost Lifeline on behalf of {run.actor.name}: {run.operation} of credential "
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


def _ensure_binding(run: Run, api: ClusterApi, *, renewal: bool) -> bool:
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


def _verify_as_credential(
    run: Run, access: ClusterAccess, issuer: ClusterApi, cluster: Cluster, vault: Vault | None
) -> None:
    credential = run.credential
    with run.step("verified") as note:
        assert credential.certificate_pem is not None
        rules = issuer.cluster_role_rules(credential.cluster_role)
        if credential.custody != SERVER:
            # Lifeline cannot sign in with a key it never had: the issuer asks about the identity.
            note.append(_verify_uploaded(issuer, credential, rules))
            return
        assert vault is not None
        message = check_identity(access, cluster, credential, open_key(credential, vault), role_rules=rules)
        credential.last_verified_at, credential.last_verified_ok = utcnow(), True
        credential.last_verified_message = message
        note.append(message)


def _verify_uploaded(issuer: ClusterApi, credential: Credential, rules: list[dict[str, Any]] | None) -> str:
    """The effective-rights check for an uploaded CSR's certificate, by SubjectAccessReviews."""
    assert credential.certificate_pem is not None
    info = pki.parse_certificate(credential.certificate_pem)
    groups = policy.subject_groups(info.organizations)
    try:
        rights = policy.check_subject_rights(issuer, info.common_name, groups, rules, credential.cluster_role)
    except ClusterApiError as exc:
        if exc.status != 403:
            raise
        raise StepFailed(
            "verified",
            "the issuer may not create SubjectAccessReviews (authorization.k8s.io), so the rights of a "
            "certificate whose key Lifeline never holds cannot be checked and it is not handed out; grant "
            "the issuer `create subjectaccessreviews` (Lifeline's own issuer ClusterRole has it once "
            f"rewritten) and issue again ({exc})",
        ) from None
    return (
        f"{rights} The key is on your machine: check with `kubectl auth whoami` using the downloaded "
        "kubeconfig."
    )
