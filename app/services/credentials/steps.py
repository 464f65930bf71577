"""The step recorder every cluster operation runs through: each step a `CredentialEvent` made visible
as it starts and ends, the clean-up of what a failed run created, and the credential audit row."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.kube.operations import ClusterAccess, ClusterApi, ClusterApiError, ClusterTarget
from app.models import Cluster, Credential, CredentialEvent
from app.models.base import utcnow
from app.services.audit import Actor, Outcome, Via, record_audit
from app.services.credentials import policy
from app.services.credentials.vocabulary import OWN_PURPOSES, STEP_LABELS, KeyUnavailable, StepFailed

log = logging.getLogger(__name__)

Checkpoint = Callable[[], None]
"""Makes the steps so far visible to other sessions (a commit, owned by `runs`)."""


class Run:
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
            actor=self.actor.name,
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
        except (ClusterApiError, KeyUnavailable) as exc:
            event.state, event.message = "failed", str(exc)
            self.session.flush()
            raise StepFailed(name, str(exc)) from None
        event.state = "skipped" if note and note[0].startswith("skipped:") else "done"
        event.message = " ".join(note).removeprefix("skipped: ")
        event.at = utcnow()
        self.session.flush()
        self.checkpoint()

    def fail(self, exc: StepFailed) -> None:
        """The run stops at `exc.step`: the credential is failed, keeps no key, and the failure is audited."""
        credential = self.credential
        recorded = self.session.scalar(
            select(CredentialEvent.id).where(
                CredentialEvent.credential_id == credential.id,
                CredentialEvent.run == self.number,
                CredentialEvent.step == exc.step,
            )
        )
        if recorded is None:
            self.session.add(
                CredentialEvent(
                    credential_id=credential.id,
                    run=self.number,
                    operation=self.operation,
                    step=exc.step,
                    state="failed",
                    message=str(exc),
                    actor=self.actor.name,
                )
            )
        credential.status = "failed"
        credential.failed_step = exc.step
        credential.error = f"{STEP_LABELS.get(exc.step, exc.step)} failed: {exc}"
        # A half-issued credential must not be usable from Lifeline: drop the key.
        credential.encrypted_key = None
        audit_credential(
            self.session,
            self.actor,
            f"credential.{self.operation}",
            credential,
            Outcome.failure,
            error=credential.error,
        )
        self.session.flush()
        self.checkpoint()
        log.warning("credential %s %s failed at %s: %s", credential.id, self.operation, exc.step, exc)

    def clean_up(self, api: ClusterApi | None, *, csr: bool, binding: bool) -> None:
        """Delete what this run created on the cluster; StepFailed names what is left to delete by hand."""
        credential = self.credential
        if api is None or not (csr or binding):
            return
        with self.step("cleanup") as note:
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
                    problems.append(
                        f"ClusterRoleBinding {credential.binding_name} could not be deleted: {exc}"
                    )
            if problems:
                raise StepFailed("cleanup", " ".join(problems) + " Delete it by hand.")


def audit_credential(
    session: Session, actor: Actor, action: str, credential: Credential, outcome: str, **details: Any
) -> None:
    """One audit row about a credential, naming its cluster, identity, role and certificate."""
    record_audit(
        session,
        actor=actor,
        action=action,
        target=f"credential:{credential.id}",
        outcome=outcome,
        details={
            "cluster": credential.cluster.name,
            "identity": credential.username,
            "cluster_role": credential.cluster_role,
            "fingerprint": credential.fingerprint_sha256,
            "via": actor.via,
            **details,
        },
    )
    event = _NOTIFIED.get(action)
    # Lifeline's own identities are issued and renewed by the upkeep job on its own: the audit row
    # records it; a notification for every routine renewal would only be noise.
    routine = credential.kind in OWN_PURPOSES and actor.via == Via.system and event == "issued"
    if event is not None and outcome == Outcome.success and not routine:
        notify_credential(session, actor, event, credential)


# Credential actions that notification rules can follow (`credential.<event>` kinds).
_NOTIFIED = {"credential.issue": "issued", "credential.renew": "issued", "credential.revoke": "revoked"}


def notify_credential(session: Session, actor: Actor, event: str, credential: Credential) -> None:
    """Put a `credential.<event>` notification in the outbox, in the action's own transaction."""
    from app.services.notifications.events import credential_event

    credential_event(
        session,
        action=event,
        credential_id=credential.id,
        cluster=credential.cluster.name,
        region=credential.cluster.region,
        subject=credential.username,
        actor=actor.name,
        now=utcnow(),
    )


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


def check_identity(
    access: ClusterAccess,
    cluster: Cluster,
    credential: Credential,
    key_pem: bytes,
    *,
    role_rules: list[dict[str, Any]] | Literal["unchecked"] | None = "unchecked",
) -> str:
    """Sign in to the cluster as the credential and confirm who the cluster says it is; with
    `role_rules` (the ClusterRole's rules, None when unreadable) also that it can do no more."""
    assert credential.certificate_pem is not None
    client = access.as_client(target_of(cluster), credential.certificate_pem, key_pem)
    rights = ""
    try:
        version = client.server_version()
        who = client.whoami()
        if role_rules != "unchecked":
            rights = " " + policy.check_effective_rights(client, role_rules, credential.cluster_role)
    finally:
        client.close()
    if who.username != credential.username:
        raise StepFailed(
            "verified", f"the cluster sees this certificate as {who.username!r}, not {credential.username!r}"
        )
    if credential.group_name and credential.group_name not in who.groups:
        raise StepFailed("verified", f"the cluster does not report group {credential.group_name!r}")
    return f"/version {version}; SelfSubjectReview: {who.username} ({', '.join(who.groups)});{rights}"
