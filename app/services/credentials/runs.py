"""The one owner of long cluster operations (issuing, renewing, verifying, revoking) for every caller:
the web edge, the CLI and the scheduler.

Each operation gets its own session from `session_factory` through `session_scope`, and commits at
every step checkpoint so the progress page shows each step while it happens and an issued
certificate is stored the moment it exists. A run that crashes (a bug, not a refused step) is
marked failed instead of staying "running" for ever. Refusals (`ServiceError`) propagate unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.aws import AwsClients
from app.integrations.eks_network import NetworkLookupError, control_plane_ips, resolve_host
from app.integrations.kube.kubeconfig import KubeconfigSpec
from app.integrations.kube.operations import ClusterAccess, ClusterApiError, ClusterTarget, cluster_access
from app.integrations.kube.types import Identity
from app.models import Cluster, ClusterIdentity, Credential, CredentialEvent
from app.models.base import utcnow
from app.services.audit import SYSTEM, Actor
from app.services.credentials import access as handout
from app.services.credentials import groups, identities, intake, issuing, upkeep
from app.services.credentials.keys import vault_from_settings
from app.services.credentials.queries import active_credential_ids
from app.services.credentials.steps import target_of
from app.services.credentials.vocabulary import IssueRequest, Timing
from app.services.errors import ServiceError
from app.settings import Settings

log = logging.getLogger(__name__)

CRASHED = "stopped on an internal error (see the server log)"


def build_access(settings: Settings, session_factory: sessionmaker[Session] | None = None) -> ClusterAccess:
    """How runs reach clusters; with a session factory, Lifeline's own issuer identity is the last
    resort after the override kubeconfig and IAM."""
    own_issuer = None
    if session_factory is not None:
        factory = session_factory

        def own_issuer(target: ClusterTarget) -> Identity | None:
            return _own_identity(settings, factory, target, identities.ISSUER)

    return cluster_access(
        clients=AwsClients.from_settings(settings),
        issuer_kubeconfig=settings.issuer_kubeconfig,
        own_issuer=own_issuer,
    )


def _own_identity(
    settings: Settings, session_factory: sessionmaker[Session], target: ClusterTarget, purpose: str
) -> Identity | None:
    """Lifeline's own identity of `purpose` on the target's cluster; None (logged) when its key
    cannot be opened, so a broken data key never stops the other paths."""
    try:
        vault = vault_from_settings(settings)
        # A reader session: it is asked for while a run's own session may hold SQLite's write lock.
        with session_factory() as session:
            cluster = session.scalar(
                select(Cluster).where(Cluster.name == target.name, Cluster.region == target.region)
            )
            if cluster is None:
                return None
            return identities.own_identity(session, vault, cluster.id, purpose)
    except ServiceError as exc:
        log.warning("own %s identity of %s unavailable: %s", purpose, target.name, exc)
        return None


def timing_from_settings(settings: Settings) -> Timing:
    return Timing(signing_timeout=settings.credential_signing_timeout_seconds)


def start_issue(
    settings: Settings, session_factory: sessionmaker[Session], request: IssueRequest, actor: Actor
) -> int:
    """Validate and record the request (committed); refusals are raised before anything is stored."""
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        valid = intake.validate_request(
            session,
            request,
            actor,
            max_lifetime_days=settings.credential_max_lifetime_days,
            has_vault=vault is not None,
            allowed_groups=groups.allowed_groups(session, setting=settings.credential_allowed_groups).groups,
        )
        return intake.create_credential(session, valid, actor, vault).id


def start_renewal(
    settings: Settings, session_factory: sessionmaker[Session], credential_id: int, actor: Actor
) -> int:
    """Record the renewal row (committed); its steps run with `run_pending`."""
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        return intake.start_renewal(session, credential_id, actor, vault).id


def start_fallback(
    settings: Settings, session_factory: sessionmaker[Session], actor: Actor, lifetime_days: int
) -> list[int]:
    """Queue Lifeline's own `view` credential on every cluster that lacks one (committed)."""
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        rows = handout.request_fallback_credentials(
            session, actor, vault, lifetime_seconds=lifetime_days * 86400
        )
        return [row.id for row in rows]


def run_pending(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_ids: list[int],
    actor: Actor,
    access: ClusterAccess | None = None,
) -> None:
    """Run the issue (or renewal) steps of each queued credential; never raises (a background task)."""
    for credential_id in credential_ids:
        try:
            run_issue(settings, session_factory, credential_id, actor, access)
        except Exception:
            log.exception("credential %s: issuing crashed", credential_id)


def run_issue(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> str:
    """Run the steps, committing after each; returns the final status."""
    access = access or build_access(settings, session_factory)
    vault = vault_from_settings(settings)
    _refresh_control_plane_ips(settings, session_factory, credential_id)
    with _operation_session(session_factory, credential_id) as session:
        credential = issuing.run_issue(
            session,
            credential_id,
            actor,
            access,
            vault,
            checkpoint=session.commit,
            timing=timing_from_settings(settings),
        )
        return credential.status


def verify(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> str:
    """Re-check an active credential on its cluster; returns the verification message."""
    access = access or build_access(settings, session_factory)
    vault = vault_from_settings(settings)
    with _operation_session(session_factory, credential_id) as session:
        credential = upkeep.verify_credential(
            session, credential_id, actor, access, vault, checkpoint=session.commit
        )
        return credential.last_verified_message or ""


def revoke(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> str:
    """Delete the binding; returns the notice of what remains. `ClusterUnreachable` (after the failed
    step is committed) when it cannot."""
    access = access or build_access(settings, session_factory)
    with _operation_session(session_factory, credential_id) as session:
        done = upkeep.revoke_credential(session, credential_id, actor, access, checkpoint=session.commit)
        return done.notice


def revoke_for_user(
    settings: Settings,
    session_factory: sessionmaker[Session],
    user_id: int,
    actor: Actor,
    *,
    reason: str,
    access: ClusterAccess | None = None,
) -> list[tuple[int, str]]:
    """Offboarding: revoke every active credential the account issued (an audit row each, success or
    failure); returns (credential id, outcome) for each. A cluster that cannot be reached leaves that
    credential active and says so: nothing is reported revoked that is not."""
    with session_factory() as session:
        ids = list(
            session.scalars(
                select(Credential.id)
                .where(Credential.issued_by_user_id == user_id, Credential.status == "active")
                .order_by(Credential.id)
            )
        )
    access = access or build_access(settings)
    results: list[tuple[int, str]] = []
    for credential_id in ids:
        try:
            revoke(settings, session_factory, credential_id, actor, access)
            results.append((credential_id, "revoked"))
        except ServiceError as exc:
            results.append((credential_id, f"not revoked: {exc}"))
        log.info("offboarding (%s): credential %s %s", reason, credential_id, results[-1][1])
    return results


def reverify_active(settings: Settings, session_factory: sessionmaker[Session]) -> int:
    """Re-verify every active credential as the system; one crash does not stop the others."""
    with session_scope(session_factory) as session:
        ids = active_credential_ids(session)
        has_clusters = session.scalar(select(Cluster.id).limit(1)) is not None
    if not ids or not has_clusters:
        return 0
    access = build_access(settings, session_factory)
    for credential_id in ids:
        try:
            verify(settings, session_factory, credential_id, SYSTEM, access)
        except Exception:
            log.exception("credential %s: verification crashed", credential_id)
    return len(ids)


@contextmanager
def _operation_session(session_factory: sessionmaker[Session], credential_id: int) -> Iterator[Session]:
    """The one session of one operation: committed at each checkpoint and at the end, rolled back
    on an error, and a crash marks the run failed."""
    with _failed_on_crash(session_factory, credential_id), session_scope(session_factory) as session:
        yield session


@contextmanager
def _failed_on_crash(session_factory: sessionmaker[Session], credential_id: int) -> Iterator[None]:
    """On an unexpected exception (not a refusal), mark the unfinished run failed in a fresh session."""
    try:
        yield
    except ServiceError:
        raise
    except Exception:
        try:
            _mark_crashed(session_factory, credential_id)
        except Exception:
            log.exception("credential %s: could not mark the crashed run failed", credential_id)
        raise


def _mark_crashed(session_factory: sessionmaker[Session], credential_id: int) -> None:
    with session_scope(session_factory) as session:
        credential = session.get(Credential, credential_id)
        if credential is None:
            return
        running = session.scalars(
            select(CredentialEvent).where(
                CredentialEvent.credential_id == credential_id, CredentialEvent.state == "running"
            )
        )
        for event in running:
            event.state, event.message = "failed", CRASHED
        if credential.status == "issuing":
            credential.status = "failed"
            credential.error = f"issuing {CRASHED}"
            credential.encrypted_key = None


def _refresh_control_plane_ips(
    settings: Settings, session_factory: sessionmaker[Session], credential_id: int
) -> None:
    """Record the control-plane IPs while AWS is reachable (the bundle's /etc/hosts lines need them)."""
    with session_scope(session_factory) as session:
        credential = session.get(Credential, credential_id)
        if credential is None:
            return
        cluster = credential.cluster
        ips: tuple[str, ...] = ()
        clients = AwsClients(
            endpoint_url=settings.aws_endpoint_url,
            connect_timeout=min(settings.aws_connect_timeout_seconds, 3.0),
            read_timeout=min(settings.aws_read_timeout_seconds, 10.0),
            max_attempts=1,
        )
        try:
            ips = control_plane_ips(clients, cluster.region, cluster.name)
        except NetworkLookupError as exc:
            log.info("control-plane IPs of %s not read from EC2: %s", cluster.name, exc)
        except Exception as exc:  # the Region may be unreachable: keep what we had
            log.info("control-plane IPs of %s not read from EC2: %s", cluster.name, exc)
        if not ips and cluster.endpoint:
            hostname = KubeconfigSpec(cluster.name, cluster.endpoint, "", "", "").hostname
            ips = resolve_host(hostname) if hostname else ()  # an IP endpoint has no name to pin
        if ips:
            credential.control_plane_ips = list(ips)


# ---------------------------------------------------------------- Lifeline's own identities


def upkeep_identities(
    settings: Settings, session_factory: sessionmaker[Session], access: ClusterAccess | None = None
) -> dict[str, str]:
    """Create or renew Lifeline's issuer and reader identity on every cluster; one failing cluster
    never stops the others. Returns {"cluster/purpose": what happened}."""
    outcomes: dict[str, str] = {}
    if not settings.own_identities:
        return outcomes
    vault = vault_from_settings(settings)
    if vault is None:
        return outcomes  # keys must be sealed: without a data key there is nothing to do
    access = access or build_access(settings, session_factory)
    with session_scope(session_factory) as session:
        clusters = [
            (c.id, c.name)
            for c in session.scalars(select(Cluster).order_by(Cluster.name))
            if c.endpoint and c.certificate_authority
        ]
    for cluster_pk, name in clusters:
        for purpose in identities.OWN_PURPOSES:
            key = f"{name}/{purpose}"
            try:
                outcomes[key] = _upkeep_one(settings, session_factory, access, cluster_pk, purpose)
            except Exception as exc:
                log.exception("own %s identity of %s: upkeep crashed", purpose, name)
                outcomes[key] = f"error: {exc}"
    return outcomes


def _upkeep_one(
    settings: Settings,
    session_factory: sessionmaker[Session],
    access: ClusterAccess,
    cluster_pk: int,
    purpose: str,
) -> str:
    grantable = list(settings.issuer_grantable_roles)
    with session_scope(session_factory) as session:
        cluster = session.get_one(Cluster, cluster_pk)
        row = identities.ensure_identity(session, cluster, purpose, grantable)
        plan = identities.due(session, row, grantable, utcnow())
        target = target_of(cluster)
        identity_id, role_name = row.id, row.cluster_role
    if plan.action == "none" and plan.credential_id is None:
        return plan.reason
    drift: list[str] = []
    if plan.action == "none" and not plan.role_stale:
        drift = _role_drift(access, target, purpose, role_name, grantable)
        if not drift:
            return plan.reason
        log.warning("own %s identity of %s: ClusterRole drifted (%s)", purpose, target.name, "; ".join(drift))
    # The ClusterRole first (only the override or IAM may write it); a renewal goes on without it.
    role_error = _apply_role(session_factory, access, target, identity_id, grantable)
    if role_error and plan.action != "renew":
        _record(session_factory, identity_id, role_error)
        done = "ClusterRole not updated" if plan.action == "none" else "not issued"
        return f"{done}: {role_error}"
    if plan.action == "none":
        if drift:
            with session_scope(session_factory) as session:
                identities.record_role_repair(
                    session, session.get_one(ClusterIdentity, identity_id), drift, SYSTEM
                )
        return "ClusterRole updated"
    with session_scope(session_factory) as session:
        row = session.get_one(ClusterIdentity, identity_id)
        if plan.action == "issue":
            credential = intake.create_credential(
                session,
                identities.issue_request(row, settings.own_identity_lifetime_days * 86400),
                SYSTEM,
                vault_from_settings(settings),
            )
        else:
            assert plan.credential_id is not None
            credential = intake.start_renewal(
                session, plan.credential_id, SYSTEM, vault_from_settings(settings)
            )
        credential_id = credential.id
    status = run_issue(settings, session_factory, credential_id, SYSTEM, access)
    with session_scope(session_factory) as session:
        credential = session.get_one(Credential, credential_id)
        error = None if status == "active" else credential.error
        _record_in(session, identity_id, error)
    done = {"issue": "issued", "renew": "renewed"}[plan.action]
    return f"{done}: {status}" if status == "active" else f"{plan.action} failed: {error}"


def _role_drift(
    access: ClusterAccess, target: ClusterTarget, purpose: str, role_name: str, grantable: list[str]
) -> list[str]:
    """How the identity's ClusterRole on the cluster differs from what Lifeline writes; empty when it
    matches or cannot be read now (no override or IAM during a disconnect: nothing could rewrite it)."""
    if access.provisioner is None:
        return []
    try:
        api = access.provisioner(target)
    except ClusterApiError:
        return []
    try:
        found = api.cluster_role_rules(role_name)
    except ClusterApiError as exc:
        log.info("ClusterRole of own %s identity on %s not read: %s", purpose, target.name, exc)
        return []
    finally:
        api.close()
    return identities.role_drift(found, _rules_of(purpose, grantable))


def _rules_of(purpose: str, grantable: list[str]) -> list[dict[str, Any]]:
    if purpose == identities.ISSUER:
        return identities.issuer_rules(grantable)
    return list(identities.READER_RULES)


def _apply_role(
    session_factory: sessionmaker[Session],
    access: ClusterAccess,
    target: ClusterTarget,
    identity_id: int,
    grantable: list[str],
) -> str | None:
    """Write the identity's ClusterRole as the override or IAM; the reason it could not be, or None."""
    with session_scope(session_factory) as session:
        row = session.get_one(ClusterIdentity, identity_id)
        purpose, name = row.purpose, row.cluster_role
    rules = _rules_of(purpose, grantable)
    provisioner = access.provisioner or access.issuer
    try:
        api = provisioner(target)
    except ClusterApiError as exc:
        return f"Lifeline cannot write ClusterRole {name} now ({exc})"
    try:
        api.apply_cluster_role(name, rules, labels=identities.ROLE_LABELS)
    except ClusterApiError as exc:
        return str(exc)
    finally:
        api.close()
    with session_scope(session_factory) as session:
        row = session.get_one(ClusterIdentity, identity_id)
        if row.purpose == identities.ISSUER:
            row.grantable_roles = sorted(grantable)
    return None


def _record(session_factory: sessionmaker[Session], identity_id: int, error: str | None) -> None:
    with session_scope(session_factory) as session:
        _record_in(session, identity_id, error)


def _record_in(session: Session, identity_id: int, error: str | None) -> None:
    row = session.get(ClusterIdentity, identity_id)
    if row is not None:
        identities.record_attempt(row, error)


def revoke_identity(
    settings: Settings,
    session_factory: sessionmaker[Session],
    cluster_pk: int,
    purpose: str,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> None:
    """An admin revokes Lifeline's own identity: its binding is deleted (through the override, IAM
    or, for the reader, the issuer identity) and the upkeep job stops bringing it back."""
    with session_scope(session_factory) as session:
        row = identities.get_identity(session, cluster_pk, purpose)
        if not actor.is_admin:
            identities.set_enabled(session, row, actor, enabled=False)  # raises NotOwner
        credential = identities.current_credential(session, cluster_pk, purpose)
        credential_id = credential.id if credential else None
    if credential_id is not None:
        revoke(settings, session_factory, credential_id, actor, access)
    with session_scope(session_factory) as session:
        row = identities.get_identity(session, cluster_pk, purpose)
        identities.set_enabled(session, row, actor, enabled=False)


def enable_identity(
    settings: Settings, session_factory: sessionmaker[Session], cluster_pk: int, purpose: str, actor: Actor
) -> None:
    """Let the upkeep job create the identity again (run `upkeep_identities` to do it now)."""
    with session_scope(session_factory) as session:
        row = identities.get_identity(session, cluster_pk, purpose)
        identities.set_enabled(session, row, actor, enabled=True)
