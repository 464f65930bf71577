"""Lifeline's own identities on the simulated cluster: made while connected, then issuing during a
disconnect with no LIFELINE_ISSUER_KUBECONFIG through `lifeline:issuer` (checked with the real
kubectl), least privilege enforced by the API server's RBAC, renewal, and an admin's revocation."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.integrations import pki
from app.integrations.kube import client as kube
from app.jobs.readiness import RESOURCES
from app.models import AuditEvent, Cluster, ClusterIdentity, Credential, NotificationEvent
from app.services.audit import Actor
from app.services.credentials import access as handout
from app.services.credentials import identities, queries, runs
from app.services.credentials.keys import open_key, vault_from_settings
from app.services.credentials.vocabulary import IssueRequest, NotOwner
from app.settings import Settings
from tests.fixtures.credentials import SimEnv

ADMIN = Actor(name="admin", role="admin")
RESPONDER = Actor(name="rita", role="responder")


def kubectl_run(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def provisioned(settings: Settings, session_factory: sessionmaker[Session]) -> dict[str, str]:
    outcomes = runs.upkeep_identities(settings, session_factory)
    assert outcomes == {"edge-sim/issuer": "issued: active", "edge-sim/reader": "issued: active"}, outcomes
    return outcomes


def own_kubeconfig(session: Session, settings: Settings, env: SimEnv, purpose: str, path: Path) -> Path:
    """A kubeconfig as Lifeline's own identity (what an attacker holding its key would have)."""
    credential = identities.current_credential(session, env.cluster_id, purpose)
    assert credential is not None
    vault = vault_from_settings(settings)
    assert vault is not None
    spec = handout.kubeconfig_spec(credential, open_key(credential, vault), ())
    from app.integrations.kube.kubeconfig import build_kubeconfig

    path.write_text(build_kubeconfig(spec))
    path.chmod(0o600)
    return path


def test_identities_are_made_while_connected_with_least_privilege_roles(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    provisioned(settings, session_factory)
    session.expire_all()
    issuer_role = sim_env.admin.get_object("rbac.authorization.k8s.io/v1", "clusterroles", "lifeline:issuer")
    assert issuer_role["rules"] == identities.issuer_rules(["cluster-admin", "admin", "edit", "view"])
    bind = next(r for r in issuer_role["rules"] if r["verbs"] == ["bind"])
    assert bind["resourceNames"] == ["admin", "cluster-admin", "edit", "view"]
    assert sorted(sim_env.bindings()) == ["lifeline:issuer", "lifeline:reader"]
    for purpose in ("issuer", "reader"):
        credential = identities.current_credential(session, sim_env.cluster_id, purpose)
        assert credential is not None and credential.status == "active"
        assert credential.username == f"lifeline:{purpose}" and credential.encrypted_key
        assert "PRIVATE KEY" not in credential.encrypted_key
        assert credential.not_after is not None
        assert credential.not_after - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "credential.issue" in actions
    # They renew themselves: no "expires within 30 days" warning for a 30-day identity.
    assert queries.expiry_warnings(session, cluster_pk=sim_env.cluster_id) == []
    # ...nor a "credential issued" notification for each routine (re)issue; the audit row records it.
    assert session.scalars(select(NotificationEvent.kind)).all() == []
    # A second run finds both valid and does nothing.
    again = runs.upkeep_identities(settings, session_factory)
    assert again == {"edge-sim/issuer": "valid", "edge-sim/reader": "valid"}


def test_issuing_during_a_disconnect_goes_through_the_own_issuer(
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    kubectl: str,
    tmp_path: Path,
) -> None:
    assert settings.issuer_kubeconfig is None
    provisioned(settings, session_factory)
    sim_env.sim.disconnect()
    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:oncall",
        group="lifeline:breakglass",
        cluster_role="cluster-admin",
        lifetime_seconds=3600,
    )
    credential_id = runs.start_issue(settings, session_factory, request, ADMIN)
    assert runs.run_issue(settings, session_factory, credential_id, ADMIN) == "active"
    session.expire_all()
    credential = session.get_one(Credential, credential_id)
    created = next(e for e in credential.events if e.step == "csr_created")
    assert "as Lifeline's own issuer identity (lifeline:issuer)" in created.message
    download = handout.download_credential(
        session, credential_id, ADMIN, vault_from_settings(settings), "kubeconfig"
    )
    assert isinstance(download, handout.Download)
    config = tmp_path / "oncall.kubeconfig"
    config.write_bytes(download.content)
    nodes = kubectl_run(kubectl, config, "get", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    whoami = kubectl_run(kubectl, config, "auth", "whoami")
    assert "lifeline:oncall" in whoami.stdout


def test_an_uploaded_csr_is_verified_through_the_own_issuer_during_a_disconnect(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    """The issuer's ClusterRole lets it ask SubjectAccessReviews, so a credential whose key Lifeline
    never holds is still checked for rights beyond its ClusterRole while IAM is gone."""
    provisioned(settings, session_factory)
    sim_env.sim.disconnect()
    key = pki.generate_private_key(pki.KeyType.ecdsa_p256)
    request = IssueRequest(
        cluster_pk=sim_env.cluster_id,
        username="lifeline:oncall",
        group="lifeline:breakglass",
        cluster_role="view",
        lifetime_seconds=3600,
        custody="uploaded-csr",
        csr_pem=pki.build_csr(key.pem, "lifeline:oncall", ("lifeline:breakglass",)),
    )
    credential_id = runs.start_issue(settings, session_factory, request, ADMIN)
    assert runs.run_issue(settings, session_factory, credential_id, ADMIN) == "active"
    session.expire_all()
    verified = next(e for e in session.get_one(Credential, credential_id).events if e.step == "verified")
    assert "match ClusterRole view" in verified.message
    assert "SubjectAccessReviews as the issuer" in verified.message


def test_without_own_identity_a_disconnect_leaves_no_way_to_issue(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    """The bug: with nothing prepared, issuing during a disconnect failed. It still must, and say why."""
    sim_env.sim.disconnect()
    request = IssueRequest(sim_env.cluster_id, "lifeline:oncall", None, "view", 3600)
    credential_id = runs.start_issue(settings, session_factory, request, ADMIN)
    assert runs.run_issue(settings, session_factory, credential_id, ADMIN) == "failed"
    session.expire_all()
    error = session.get_one(Credential, credential_id).error or ""
    assert "no issuer identity of its own" in error


def test_the_issuer_cannot_read_secrets_or_bind_other_roles(
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    kubectl: str,
    tmp_path: Path,
) -> None:
    provisioned(settings, session_factory)
    config = own_kubeconfig(session, settings, sim_env, "issuer", tmp_path / "issuer.kubeconfig")
    whoami = kubectl_run(kubectl, config, "auth", "whoami")
    assert "lifeline:issuer" in whoami.stdout, whoami.stderr
    secrets = kubectl_run(kubectl, config, "get", "secrets", "-A")
    assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower()
    pods = kubectl_run(kubectl, config, "get", "pods", "-A")
    assert pods.returncode != 0 and "forbidden" in pods.stderr.lower()
    # A ClusterRole outside its list exists on the cluster, but the issuer may not bind it...
    sim_env.admin.apply_cluster_role(
        "secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    )
    escalate = kubectl_run(
        kubectl,
        config,
        "create",
        "clusterrolebinding",
        "steal",
        "--clusterrole=secret-reader",
        "--user=mallory",
    )
    assert escalate.returncode != 0 and "forbidden" in escalate.stderr.lower(), escalate.stderr
    # ...nor write a ClusterRole of its own, nor approve for another signer.
    role = kubectl_run(kubectl, config, "create", "clusterrole", "mine", "--verb=get", "--resource=secrets")
    assert role.returncode != 0 and "forbidden" in role.stderr.lower()
    # A binding to a listed role works (what issuing needs).
    allowed = kubectl_run(
        kubectl, config, "create", "clusterrolebinding", "ok-view", "--clusterrole=view", "--user=alice"
    )
    assert allowed.returncode == 0, allowed.stderr
    # And issuing through it with a role outside the list stops at the binding, cleaned up.
    sim_env.sim.disconnect()
    request = IssueRequest(sim_env.cluster_id, "lifeline:mallory", None, "secret-reader", 3600)
    credential_id = runs.start_issue(settings, session_factory, request, ADMIN)
    assert runs.run_issue(settings, session_factory, credential_id, ADMIN) == "failed"
    session.expire_all()
    failed = session.get_one(Credential, credential_id)
    assert failed.failed_step == "binding_created" and "forbidden" in (failed.error or "").lower()
    assert "lifeline:mallory" not in sim_env.bindings()


def test_the_reader_reads_what_the_checks_need_and_no_secrets(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    provisioned(settings, session_factory)
    reader = identities.own_identity(session, vault_from_settings(settings), sim_env.cluster_id, "reader")
    assert reader is not None
    with kube.connect(sim_env.sim.url, sim_env.sim.ca_pem, reader.auth) as conn:
        for api_version, plural, _kind in RESOURCES:
            group = api_version.split("/")[0] if "/" in api_version else ""
            assert conn.can_i("list", plural, group=group), plural
        assert conn.can_i("list", "configmaps")
        assert not conn.can_i("get", "secrets")
        assert not conn.can_i("create", "pods")
        assert not conn.can_i("create", "certificatesigningrequests", group="certificates.k8s.io")


def test_renewal_before_expiry_runs_through_the_own_issuer_while_disconnected(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    provisioned(settings, session_factory)
    old = identities.current_credential(session, sim_env.cluster_id, "issuer")
    assert old is not None
    # Move its validity so that less than a third is left (the certificate itself stays valid).
    now = dt.datetime.now(dt.UTC)
    old.not_before, old.not_after = now - dt.timedelta(days=25), now + dt.timedelta(days=5)
    session.commit()
    sim_env.sim.disconnect()
    outcomes = runs.upkeep_identities(settings, session_factory)
    assert outcomes["edge-sim/issuer"] == "renewed: active"
    session.expire_all()
    new = identities.current_credential(session, sim_env.cluster_id, "issuer")
    assert new is not None and new.id != old.id and new.renewal_of_id == old.id
    assert session.get_one(Credential, old.id).status == "renewed"
    assert outcomes["edge-sim/reader"] == "valid"


def test_an_admin_revokes_an_identity_and_upkeep_leaves_it_revoked(
    sim_env: SimEnv, settings: Settings, session_factory: sessionmaker[Session], session: Session
) -> None:
    provisioned(settings, session_factory)
    with pytest.raises(NotOwner):
        runs.revoke_identity(settings, session_factory, sim_env.cluster_id, "issuer", RESPONDER)
    runs.revoke_identity(settings, session_factory, sim_env.cluster_id, "issuer", ADMIN)
    session.expire_all()
    assert sim_env.bindings() == ["lifeline:reader"]
    row = session.scalars(select(ClusterIdentity).where(ClusterIdentity.purpose == "issuer")).one()
    assert not row.enabled and row.revoked_by == "admin"
    assert identities.current_credential(session, sim_env.cluster_id, "issuer") is None
    assert "identity.revoke" in set(session.scalars(select(AuditEvent.action)))
    assert runs.upkeep_identities(settings, session_factory)["edge-sim/issuer"] == "revoked by an admin"
    runs.enable_identity(settings, session_factory, sim_env.cluster_id, "issuer", ADMIN)
    assert runs.upkeep_identities(settings, session_factory)["edge-sim/issuer"] == "issued: active"


def test_the_override_kubeconfig_is_tried_before_iam(
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    tmp_path: Path,
) -> None:
    override = sim_env.sim.write_admin_kubeconfig(tmp_path / "issuer.kubeconfig")
    with_override = settings.model_copy(update={"issuer_kubeconfig": override})
    target = runs.target_of(session.get_one(Cluster, sim_env.cluster_id))
    api = runs.build_access(with_override, session_factory).issuer(target)
    try:
        assert api.description == "issuer kubeconfig"  # type: ignore[attr-defined]
    finally:
        api.close()


def test_upkeep_brings_an_older_issuer_role_up_to_date(
    sim_env: SimEnv,
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    kubectl: str,
    tmp_path: Path,
) -> None:
    """A ClusterRole written by a version before the SubjectAccessReview rule: the next upkeep adds
    the rule while the certificate is still valid (not only at renewal), and says so in the trail."""
    provisioned(settings, session_factory)
    wanted = identities.issuer_rules(["cluster-admin", "admin", "edit", "view"])
    older = [r for r in wanted if r["resources"] != ["subjectaccessreviews"]]
    assert len(older) == len(wanted) - 1
    sim_env.admin.apply_cluster_role("lifeline:issuer", older, labels=identities.ROLE_LABELS)
    config = own_kubeconfig(session, settings, sim_env, "issuer", tmp_path / "issuer.kubeconfig")
    can_review = ("auth", "can-i", "create", "subjectaccessreviews.authorization.k8s.io")
    assert kubectl_run(kubectl, config, *can_review).stdout.strip() == "no"

    outcomes = runs.upkeep_identities(settings, session_factory)
    assert outcomes == {"edge-sim/issuer": "ClusterRole updated", "edge-sim/reader": "valid"}, outcomes
    role = sim_env.admin.get_object("rbac.authorization.k8s.io/v1", "clusterroles", "lifeline:issuer")
    assert role["rules"] == wanted
    assert kubectl_run(kubectl, config, *can_review).stdout.strip() == "yes"
    session.expire_all()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "identity.role_updated")).all()
    assert event.actor == "lifeline" and event.details["identity"] == "lifeline:issuer"
    assert event.details["drift"] == ["missing: create authorization.k8s.io/subjectaccessreviews"]
    # Matching rules (however the API server orders them) are left alone: no write, no audit row.
    assert runs.upkeep_identities(settings, session_factory) == {
        "edge-sim/issuer": "valid",
        "edge-sim/reader": "valid",
    }
    assert (
        len(session.scalars(select(AuditEvent).where(AuditEvent.action == "identity.role_updated")).all())
        == 1
    )


def test_role_drift_ignores_order_and_names_what_differs() -> None:
    wanted = identities.issuer_rules(["view", "edit"])
    shuffled = [dict(r, verbs=sorted(r["verbs"], reverse=True)) for r in reversed(wanted)]
    assert identities.role_drift(shuffled, wanted) == []
    extra = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    assert identities.role_drift([*wanted, extra], wanted) == ["extra: get core/secrets"]
    assert identities.role_drift(None, wanted) == ["the ClusterRole is missing"]
