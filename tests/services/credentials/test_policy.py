"""Issue 12, finding 1: the group a credential carries is policy, and its effective rights are checked.

On the landed version a responder asked for group `eks-breakglass` (bound to cluster-admin by a binding
Lifeline does not manage) with ClusterRole `view`, and got `kubectl auth can-i '*' '*'` = yes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations import pki
from app.models import Credential
from app.services.credentials import policy
from app.services.credentials.policy import SENTINELS, Sentinel, foreign_bindings_naming, role_grants
from tests.fixtures.credentials import SimEnv
from tests.services.credentials.test_issuing import kubectl_run, save_kubeconfig


def _allow(app: FastAPI, *groups: str) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"credential_allowed_groups": ["lifeline:breakglass", *groups]}
    )


def _issue(client: Any, env: SimEnv, **body: Any) -> Any:
    return client.post(f"/api/v1/clusters/{env.cluster_name}/credentials", json=body)


def test_a_group_off_the_allow_list_is_refused(client_as: Any, sim_env: SimEnv) -> None:
    responder = client_as("responder", "rita")
    refused = _issue(responder, sim_env, group="eks-breakglass", cluster_role="view")
    assert refused.status_code == 422
    assert refused.json()["field"] == "group"
    assert "LIFELINE_CREDENTIAL_ALLOWED_GROUPS" in refused.json()["detail"]
    assert sim_env.csrs() == []


def test_issuing_follows_the_list_an_admin_saved(client_as: Any, sim_env: SimEnv, session: Session) -> None:
    """Removed from the list: refused on the API and the web form; added: issued (the setting still
    lists lifeline:breakglass, so the stored list is what decides)."""
    admin = client_as("admin", "root")
    saved = admin.post("/credential-policy/groups", data={"groups": "oncall-view"}, follow_redirects=False)
    assert saved.status_code == 303
    responder = client_as("responder", "rita")
    refused = _issue(responder, sim_env, group="lifeline:breakglass", cluster_role="view")
    assert refused.status_code == 422 and refused.json()["field"] == "group"
    assert "not on the allowed list (oncall-view)" in refused.json()["detail"]
    form = {"cluster": str(sim_env.cluster_id), "group": "lifeline:breakglass", "cluster_role": "view"}
    page = responder.post("/credentials", data=form, headers={"HX-Request": "true"})
    assert page.status_code == 422
    assert "not on the allowed list" in page.context["f"].errors["group"]  # type: ignore[attr-defined]
    assert sim_env.csrs() == [] and session.scalars(select(Credential)).all() == []
    # The form offers what is allowed now, and no longer pre-fills the removed group.
    blank = responder.get(f"/credentials/new?cluster={sim_env.cluster_id}")
    assert blank.context["allowed_groups"] == ("oncall-view",)  # type: ignore[attr-defined]
    assert blank.context["f"].values["group"] == ""  # type: ignore[attr-defined]

    issued = _issue(responder, sim_env, group="oncall-view", cluster_role="view", lifetime_seconds=3600)
    assert issued.status_code == 201, issued.text
    assert issued.json()["group"] == "oncall-view"


def test_a_group_bound_outside_lifeline_is_refused_naming_the_binding(
    app: FastAPI, client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    sim_env.admin.create_cluster_role_binding("eks-breakglass", "cluster-admin", groups=["eks-breakglass"])
    _allow(app, "eks-breakglass")  # even an admin listing it does not make it safe
    responder = client_as("responder", "rita")
    response = _issue(responder, sim_env, group="eks-breakglass", cluster_role="view")
    assert response.status_code == 502
    body = response.json()
    assert body["status"] == "failed" and body["failed_step"] == "csr_created"
    assert "ClusterRoleBinding eks-breakglass (→ cluster-admin)" in body["error"]
    assert "not managed by Lifeline" in body["error"]
    # Nothing was signed: no CSR, no binding of Lifeline's on the cluster.
    assert sim_env.csrs() == [] and sim_env.bindings() == []


def test_more_rights_than_recorded_fail_the_issue_and_clean_up(
    client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    # A binding Lifeline does not manage already grants the identity cluster-admin.
    sim_env.admin.create_cluster_role_binding("old-oncall", "cluster-admin", users=["lifeline:rita"])
    responder = client_as("responder", "rita")
    response = _issue(responder, sim_env, cluster_role="view", lifetime_seconds=3600)
    assert response.status_code == 502
    body = response.json()
    assert body["failed_step"] == "verified"
    assert "can do more than ClusterRole view" in body["error"] and "* *" in body["error"]
    steps = {s["step"]: s["state"] for s in body["steps"]}
    assert steps["cleanup"] == "done"
    assert sim_env.csrs() == [] and sim_env.bindings() == []
    row = session.scalar(select(Credential).where(Credential.id == body["id"]))
    assert row is not None and row.encrypted_key is None


def test_allowed_group_with_view_cannot_escalate_checked_with_kubectl(
    client_as: Any, sim_env: SimEnv, kubectl: str, tmp_path: Path
) -> None:
    sim_env.admin.create_cluster_role_binding("eks-breakglass", "cluster-admin", groups=["eks-breakglass"])
    responder = client_as("responder", "rita")
    response = _issue(
        responder, sim_env, group="lifeline:breakglass", cluster_role="view", lifetime_seconds=3600
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert "effective rights match ClusterRole view" in record["last_verified_message"]
    config = save_kubeconfig(responder, record["id"], tmp_path / "rita.kubeconfig")
    everything = kubectl_run(kubectl, config, "auth", "can-i", "*", "*")
    assert everything.stdout.strip() == "no", everything.stdout + everything.stderr
    bind = kubectl_run(kubectl, config, "auth", "can-i", "create", "clusterrolebindings")
    assert bind.stdout.strip() == "no"
    pods = kubectl_run(kubectl, config, "auth", "can-i", "list", "pods")
    assert pods.stdout.strip() == "yes"


def test_revoke_notice_names_what_remains(client_as: Any, sim_env: SimEnv) -> None:
    responder = client_as("responder", "rita")
    record = _issue(responder, sim_env, group="lifeline:breakglass", lifetime_seconds=3600).json()
    revoked = responder.post(f"/api/v1/credentials/{record['id']}/revoke").json()
    notice = revoked["notice"]
    assert "authenticate" in notice and "until" in notice
    assert "lifeline:breakglass" in notice and "no binding" in notice


def test_role_rules_match_wildcards_only_where_granted() -> None:
    admin_rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    view_rules = [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list"]}]
    assert all(role_grants(admin_rules, s) for s in SENTINELS)
    assert not any(role_grants(view_rules, s) for s in SENTINELS)
    assert role_grants(
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}], Sentinel("get", "secrets")
    )
    managed = {
        "metadata": {"name": "lifeline:x", "labels": {"app.kubernetes.io/managed-by": "outpost-lifeline"}},
        "subjects": [{"kind": "Group", "name": "g"}],
    }
    foreign = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "ns"},
        "roleRef": {"name": "edit"},
        "subjects": [{"kind": "Group", "name": "g"}],
    }
    assert foreign_bindings_naming([managed, foreign], "g") == ["RoleBinding ns/b (→ edit)"]


# ------------------------------------------------------- uploaded CSR: SubjectAccessReviews as the issuer


def _uploaded(client: Any, env: SimEnv, cn: str, *groups: str, **body: Any) -> Any:
    key = pki.generate_private_key(pki.KeyType.ecdsa_p256)
    csr = pki.build_csr(key.pem, cn, groups)
    return _issue(client, env, custody="uploaded-csr", csr=csr, lifetime_seconds=3600, **body)


def _assert_refused_and_cleaned(response: Any, env: SimEnv, session: Session, *extra: str) -> None:
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["status"] == "failed" and body["failed_step"] == "verified"
    assert "can do more than ClusterRole view" in body["error"]
    for text in extra:
        assert text in body["error"]
    steps = {s["step"]: s["state"] for s in body["steps"]}
    assert steps["verified"] == "failed" and steps["cleanup"] == "done"
    # The CSR and Lifeline's binding are gone, as on the key-held path.
    assert env.csrs() == [] and env.bindings() == []
    assert "stored" not in steps


def test_uploaded_csr_in_a_group_bound_after_the_pre_check_is_refused_and_cleaned_up(
    client_as: Any, sim_env: SimEnv, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group escalation: a foreign binding grants the certificate's group cluster-admin. The check
    before the CSR and the creation are not atomic, so the binding appears right after that check."""
    real = policy.check_group_unbound

    def then_bound(api: Any, group: str | None, cluster: str) -> str:
        note = real(api, group, cluster)
        sim_env.admin.create_cluster_role_binding(
            "eks-breakglass", "cluster-admin", groups=["lifeline:breakglass"]
        )
        return note

    monkeypatch.setattr(policy, "check_group_unbound", then_bound)
    responder = client_as("responder", "rita")
    response = _uploaded(responder, sim_env, "lifeline:rita", "lifeline:breakglass", cluster_role="view")
    _assert_refused_and_cleaned(response, sim_env, session, "* *", "create clusterrolebindings")


def test_uploaded_csr_refused_when_everyone_authenticated_is_cluster_admin(
    client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    # Not a group the request names, so only the check after issuing sees it.
    sim_env.admin.create_cluster_role_binding(
        "everyone-admin", "cluster-admin", groups=["system:authenticated"]
    )
    responder = client_as("responder", "rita")
    response = _uploaded(responder, sim_env, "lifeline:rita", "lifeline:breakglass", cluster_role="view")
    _assert_refused_and_cleaned(response, sim_env, session, "get secrets")


def test_uploaded_csr_refused_when_a_foreign_binding_names_the_user(
    client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    sim_env.admin.create_cluster_role_binding("old-oncall", "cluster-admin", users=["lifeline:rita"])
    responder = client_as("responder", "rita")
    response = _uploaded(responder, sim_env, "lifeline:rita", cluster_role="view")
    _assert_refused_and_cleaned(response, sim_env, session, "* *")
    row = session.scalar(select(Credential).where(Credential.id == response.json()["id"]))
    assert row is not None and row.status == "failed"


def test_uploaded_csr_with_only_its_role_passes_the_review_checked_with_kubectl(
    client_as: Any, sim_env: SimEnv, kubectl: str, tmp_path: Path
) -> None:
    responder = client_as("responder", "rita")
    key = pki.generate_private_key(pki.KeyType.ecdsa_p256)
    csr = pki.build_csr(key.pem, "lifeline:rita", ("lifeline:breakglass",))
    response = _issue(
        responder, sim_env, custody="uploaded-csr", csr=csr, cluster_role="view", lifetime_seconds=3600
    )
    assert response.status_code == 201, response.text
    verified = next(s for s in response.json()["steps"] if s["step"] == "verified")
    assert verified["state"] == "done"
    assert (
        "effective rights of lifeline:rita (lifeline:breakglass, system:authenticated) match"
        in (verified["message"])
    )
    # What the reviews said is what the certificate can do.
    directory = tmp_path / "mine"
    directory.mkdir()
    config = save_kubeconfig(responder, response.json()["id"], directory / "kubeconfig")
    (directory / "client.key").write_bytes(key.pem)
    (directory / "client.key").chmod(0o600)
    assert kubectl_run(kubectl, config, "auth", "can-i", "*", "*").stdout.strip() == "no"
    assert kubectl_run(kubectl, config, "auth", "can-i", "list", "pods").stdout.strip() == "yes"


def test_an_issuer_that_may_not_review_fails_the_uploaded_csr_and_cleans_up(
    client_as: Any, sim_env: SimEnv, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.integrations.kube.operations import ClusterApiError, KubeClusterApi

    def forbidden(self: Any, user: str, *args: Any, **kwargs: Any) -> bool:
        raise ClusterApiError("subjectaccessreviews.authorization.k8s.io is forbidden", 403)

    monkeypatch.setattr(KubeClusterApi, "subject_can", forbidden)
    responder = client_as("responder", "rita")
    response = _uploaded(responder, sim_env, "lifeline:rita", cluster_role="view")
    assert response.status_code == 502
    body = response.json()
    assert body["failed_step"] == "verified"
    assert "may not create SubjectAccessReviews" in body["error"]
    assert sim_env.csrs() == [] and sim_env.bindings() == []
