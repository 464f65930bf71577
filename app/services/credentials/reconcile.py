"""Reconciling runs a crash interrupted: an `issuing` credential (a first issue or a renewal) whose
last step is older than the stale age is finished from the cluster's side.

Everything Lifeline creates on a cluster carries its labels (`app.kubernetes.io/managed-by:
outpost-lifeline`, `lifeline.outpost/credential-id: <id>`), so what an interrupted run created is
found by label even when the crash came before its name was stored. It is deleted (a half-issued
credential is never completed behind the requester's back: nobody is waiting for it any more and its
key custody is uncertain), and the row ends `failed` with the reason, so the person can issue again.
A cluster Lifeline cannot reach keeps the row `issuing` (with the reason) until a later pass can
clean up: ending it `failed` then would leave access on the cluster that nothing tracks.

Services flush, never commit: the job commits each credential in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.integrations.kube.operations import ClusterAccess, ClusterApiError
from app.models import Credential, CredentialEvent
from app.models.base import utcnow
from app.services.audit import SYSTEM, Outcome
from app.services.credentials.steps import audit_credential, target_of
from app.services.credentials.vocabulary import CREDENTIAL_LABEL, MANAGED_BY, MANAGED_BY_LABEL, STEP_LABELS

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Reconciled:
    credential_id: int
    outcome: str  # "failed" (cleaned up and closed) or "pending" (cluster unreachable, kept issuing)
    message: str


def stale_issuing_ids(
    session: Session, *, stale_after: dt.timedelta, now: dt.datetime | None = None
) -> list[int]:
    """Credentials still `issuing` whose latest step (or request) is older than `stale_after`."""
    cutoff = (now or utcnow()) - stale_after
    last_step = (
        select(CredentialEvent.credential_id, func.max(CredentialEvent.at).label("last_at"))
        .group_by(CredentialEvent.credential_id)
        .subquery()
    )
    rows = session.execute(
        select(Credential.id, Credential.created_at, last_step.c.last_at)
        .outerjoin(last_step, last_step.c.credential_id == Credential.id)
        .where(Credential.status == "issuing")
        .order_by(Credential.id)
    )
    return [cid for cid, created, last_at in rows if (last_at or created) <= cutoff]


def reconcile_credential(session: Session, credential_id: int, access: ClusterAccess) -> Reconciled | None:
    """Clean up what an interrupted run left on the cluster and close the row as failed."""
    # Lock the row (PostgreSQL) so a second pass or a late run cannot close it twice.
    session.execute(select(Credential.id).where(Credential.id == credential_id).with_for_update())
    credential = session.get(Credential, credential_id)
    if credential is None or credential.status != "issuing":
        return None  # finished meanwhile (by its run or another pass)
    events = list(
        session.scalars(
            select(CredentialEvent)
            .where(CredentialEvent.credential_id == credential_id)
            .order_by(CredentialEvent.run, CredentialEvent.id)
        )
    )
    run = max((e.run for e in events), default=1)
    operation = next((e.operation for e in reversed(events) if e.run == run), "issue")
    running = [e for e in events if e.run == run and e.state == "running"]
    reached = running[-1].step if running else (events[-1].step if events else "requested")
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{CREDENTIAL_LABEL}={credential.id}"
    deleted: list[str] = []
    try:
        api = access.issuer(target_of(credential.cluster))
        try:
            for name in api.labelled("csr", selector):
                api.delete_csr(name)
                deleted.append(f"CSR {name}")
            for name in api.labelled("binding", selector):
                api.delete_binding(name)
                deleted.append(f"ClusterRoleBinding {name}")
        finally:
            api.close()
    except ClusterApiError as exc:
        credential.error = (
            f"interrupted at {STEP_LABELS.get(reached, reached)}; Lifeline will clean up on "
            f"{credential.cluster.name} once it can reach it ({exc})"
        )
        session.flush()
        return Reconciled(credential.id, "pending", credential.error)
    now = utcnow()
    for event in running:
        event.state, event.message, event.at = "failed", "interrupted: Lifeline stopped during this step", now
    cleaned = "deleted " + ", ".join(deleted) if deleted else "nothing of it was left on the cluster"
    session.add(
        CredentialEvent(
            credential_id=credential.id,
            run=run,
            operation=operation,
            step="cleanup",
            state="done",
            message=f"reconciled after a restart: {cleaned}.",
            actor=SYSTEM.name,
            at=now,
        )
    )
    credential.status = "failed"
    credential.failed_step = reached
    credential.error = (
        f"{STEP_LABELS.get(reached, reached)} interrupted (Lifeline stopped mid-run); {cleaned}. "
        "Issue the credential again."
    )
    credential.encrypted_key = None
    audit_credential(
        session,
        SYSTEM,
        f"credential.{operation}",
        credential,
        Outcome.failure,
        error=credential.error,
        reconciled=INTERRUPTED,
    )
    session.flush()
    log.warning("credential %s: %s", credential.id, credential.error)
    return Reconciled(credential.id, "failed", credential.error)
