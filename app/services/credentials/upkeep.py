"""Keeping an active credential honest: verifying it against its cluster, and revoking it (deleting
its binding; Kubernetes cannot revoke a client certificate itself)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.integrations.kube.operations import ClusterAccess, ClusterApi, ClusterApiError
from app.integrations.vault import Vault
from app.models import Credential
from app.models.base import utcnow
from app.services.audit import Actor, Outcome
from app.services.credentials import policy
from app.services.credentials.keys import open_key
from app.services.credentials.queries import get_credential, require_manager
from app.services.credentials.steps import Checkpoint, Run, audit_credential, check_identity, target_of
from app.services.credentials.vocabulary import (
    SERVER,
    ClusterUnreachable,
    CredentialConflict,
    StepFailed,
    revoke_notice,
)


def _require_active(credential: Credential, verb: str) -> None:
    if credential.status != "active":
        raise CredentialConflict(f"only an active credential can be {verb} (this one is {credential.status})")


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
    require_manager(credential, actor, "responders can act only on credentials they issued")
    _require_active(credential, "verified")
    run = Run(session, credential, "verify", actor, checkpoint)
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
                message = check_identity(access, credential.cluster, credential, open_key(credential, vault))
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
    audit_credential(
        session, actor, "credential.verify", credential, Outcome.success if not problems else Outcome.failure
    )
    session.flush()
    checkpoint()
    return credential


@dataclass(frozen=True)
class Revoked:
    credential: Credential
    remaining: list[str]
    """Bindings not managed by Lifeline that still name the identity or its group."""

    @property
    def notice(self) -> str:
        c = self.credential
        return revoke_notice(c.username, c.group_name, c.not_after, self.remaining)


def revoke_credential(
    session: Session, credential_id: int, actor: Actor, access: ClusterAccess, *, checkpoint: Checkpoint
) -> Revoked:
    """Delete the binding; the credential is revoked only when the binding is really gone.

    When it cannot be deleted the failed step and its audit row are checkpointed before
    `ClusterUnreachable` is raised, so the refusal is on record whatever the caller rolls back.
    """
    credential = get_credential(session, credential_id)
    require_manager(credential, actor, "only an admin can revoke another person's credential")
    _require_active(credential, "revoked")
    run = Run(session, credential, "revoke", actor, checkpoint)
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
                remaining = _remaining_bindings(api, credential)
            finally:
                api.close()
            note.append(
                f"{credential.binding_name} deleted."
                if existed
                else f"{credential.binding_name} was already gone."
            )
            note.append(
                f"Still applying (not managed by Lifeline): {', '.join(remaining)}."
                if remaining
                else "No other binding names this identity or its group."
            )
    except StepFailed as exc:
        audit_credential(session, actor, "credential.revoke", credential, Outcome.failure, error=str(exc))
        session.flush()
        checkpoint()
        raise ClusterUnreachable(str(exc)) from None
    credential.status = "revoked"
    credential.revoked_at = utcnow()
    credential.revoked_by = actor.name
    credential.encrypted_key = None
    audit_credential(session, actor, "credential.revoke", credential, Outcome.success, still_bound=remaining)
    session.flush()
    checkpoint()
    return Revoked(credential, remaining)


def _remaining_bindings(api: ClusterApi, credential: Credential) -> list[str]:
    """Bindings Lifeline does not manage naming the identity (User) or its group, after the revoke."""
    try:
        bindings = api.rbac_bindings()
    except ClusterApiError as exc:
        return [f"(bindings could not be listed: {exc})"]
    found = set(policy.foreign_bindings_naming(bindings, credential.username, kind="User"))
    if credential.group_name:
        found |= set(policy.foreign_bindings_naming(bindings, credential.group_name, kind="Group"))
    return sorted(found)
