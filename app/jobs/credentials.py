"""Runs credential operations with their own transactions (each step committed so pages show it live),
and a periodic re-verification of active credentials.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.integrations.aws import AwsClients
from app.integrations.eks_network import NetworkLookupError, control_plane_ips, resolve_host
from app.integrations.kube.kubeconfig import KubeconfigSpec
from app.integrations.kube.operations import ClusterAccess, cluster_access
from app.integrations.vault import Vault, vault_or_none
from app.models import Cluster, Credential
from app.services.credentials import access as credential_access
from app.services.credentials import lifecycle
from app.services.credentials.lifecycle import Actor, CredentialError, IssueRequest, Timing
from app.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_ACTOR = Actor(user_id=None, username="lifeline", is_admin=True)
VERIFY_INTERVAL_HOURS = 6


def vault_from_settings(settings: Settings) -> Vault | None:
    secret = settings.data_key.get_secret_value() if settings.data_key else None
    return vault_or_none(secret, settings.data_key_file)


def build_access(settings: Settings) -> ClusterAccess:
    return cluster_access(
        clients=AwsClients.from_settings(settings), issuer_kubeconfig=settings.issuer_kubeconfig
    )


def timing_from_settings(settings: Settings) -> Timing:
    return Timing(signing_timeout=settings.credential_signing_timeout_seconds)


def start_issue(
    settings: Settings, session_factory: sessionmaker[Session], request: IssueRequest, actor: Actor
) -> int:
    """Validate and record the request (committed); raises CredentialError for bad input."""
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        valid = lifecycle.validate_request(
            session,
            request,
            actor,
            max_lifetime_days=settings.credential_max_lifetime_days,
            has_vault=vault is not None,
        )
        credential = lifecycle.create_credential(session, valid, actor, vault)
        return credential.id


def start_renewal(
    settings: Settings, session_factory: sessionmaker[Session], credential_id: int, actor: Actor
) -> int:
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        return lifecycle.start_renewal(session, credential_id, actor, vault).id


def start_fallback(
    settings: Settings, session_factory: sessionmaker[Session], actor: Actor, lifetime_days: int
) -> list[int]:
    vault = vault_from_settings(settings)
    with session_scope(session_factory) as session:
        rows = credential_access.request_fallback_credentials(
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
    """Run the issue (or renewal) steps of each queued credential; never raises."""
    for credential_id in credential_ids:
        try:
            run_issue(settings, session_factory, credential_id, actor, access)
        except Exception:
            log.exception("credential %s: issuing crashed", credential_id)
            _mark_crashed(session_factory, credential_id)


def run_issue(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> str:
    """Run the steps, committing after each; returns the final status."""
    access = access or build_access(settings)
    vault = vault_from_settings(settings)
    _refresh_control_plane_ips(settings, session_factory, credential_id)
    session = session_factory()
    try:
        credential = lifecycle.run_issue(
            session,
            credential_id,
            actor,
            access,
            vault,
            checkpoint=session.commit,
            timing=timing_from_settings(settings),
        )
        session.commit()
        return credential.status
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _mark_crashed(session_factory: sessionmaker[Session], credential_id: int) -> None:
    with session_scope(session_factory) as session:
        credential = session.get(Credential, credential_id)
        if credential is not None and credential.status == "issuing":
            credential.status = "failed"
            credential.error = "issuing stopped on an internal error (see the server log)"
            credential.encrypted_key = None


def verify(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> Credential:
    access = access or build_access(settings)
    session = session_factory()
    try:
        credential = lifecycle.verify_credential(
            session, credential_id, actor, access, vault_from_settings(settings), checkpoint=session.commit
        )
        session.commit()
        return credential
    finally:
        session.close()


def revoke(
    settings: Settings,
    session_factory: sessionmaker[Session],
    credential_id: int,
    actor: Actor,
    access: ClusterAccess | None = None,
) -> Credential:
    """Delete the binding; raises CredentialError (after committing the failed step) when it cannot."""
    access = access or build_access(settings)
    session = session_factory()
    try:
        credential = lifecycle.revoke_credential(
            session, credential_id, actor, access, checkpoint=session.commit
        )
        session.commit()
        return credential
    except CredentialError:
        session.commit()
        raise
    finally:
        session.close()


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
            ips = tuple(ip for ip in resolve_host(hostname) if not ip.startswith("127."))
        if ips:
            credential.control_plane_ips = list(ips)


def register(scheduler: Any, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    scheduler.add_job(
        run_once,
        "interval",
        hours=VERIFY_INTERVAL_HOURS,
        args=(settings, session_factory),
        id="credentials",
        name="re-verify active credentials",
        max_instances=1,
        coalesce=True,
    )


def run_once(settings: Settings, session_factory: sessionmaker[Session]) -> int:
    """Re-verify every active credential (binding present, certificate still accepted); returns the count."""
    with session_scope(session_factory) as session:
        ids = list(session.scalars(select(Credential.id).where(Credential.status == "active")))
        if not ids:
            return 0
        has_clusters = session.scalar(select(Cluster.id).limit(1)) is not None
    if not has_clusters:
        return 0
    access = build_access(settings)
    for credential_id in ids:
        try:
            verify(settings, session_factory, credential_id, SYSTEM_ACTOR, access)
        except Exception:
            log.exception("credential %s: verification crashed", credential_id)
    return len(ids)
