"""Issue 12, finding 1: the group a credential carries is policy, and its effective rights are checked.

On the landed version a responder asked for group `eks-breakglass` (bound to cluster-admin by a binding
Lifeline does not manage) with ClusterRole `view`, and got `kubectl auth can-i '*' '*'` = yes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations import pki
from app.models import Credential
from app.services.credentials.policy import SENTINELS, Sentinel, foreign_bindings_naming, role_grants
from tests.factories import write_kubeconfig
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


def _uploaded_csr(common_name: str, group: str = "lifeline:breakglass") -> str:
    key = pki.generate_private_key(pki.KeyType.ecdsa_p256)
    return pki.build_csr(key.pem, common_name, (group,))


def test_an_uploaded_csr_with_more_rights_than_recorded_fails_and_cleans_up(
    client_as: Any, sim_env: SimEnv, session: Session
) -> None:
    # The key never reaches Lifeline, so it cannot sign in as the credential: the issuer asks
    # SubjectAccessReviews instead, and a foreign binding for the CSR's user is caught the same way.
    sim_env.admin.create_cluster_role_binding("old-oncall", "cluster-admin", users=["lifeline:rita"])
    responder = client_as("responder", "rita")
    response = _issue(
        responder,
        sim_env,
        custody="uploaded-csr",
        csr=_uploaded_csr("lifeline:rita"),
        cluster_role="view",
        lifetime_seconds=3600,
    )
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["failed_step"] == "verified"
    assert "can do more than ClusterRole view" in body["error"] and "* *" in body["error"]
    assert {s["step"]: s["state"] for s in body["steps"]}["cleanup"] == "done"
    assert sim_env.bindings() == [] and sim_env.csrs() == []
    assert session.get_one(Credential, body["id"]).status == "failed"


def test_an_uploaded_csr_is_checked_with_subject_access_reviews(client_as: Any, sim_env: SimEnv) -> None:
    responder = client_as("responder", "rita")
    response = _issue(
        responder,
        sim_env,
        custody="uploaded-csr",
        csr=_uploaded_csr("lifeline:rita"),
        cluster_role="view",
        lifetime_seconds=3600,
    )
    assert response.status_code == 201, response.text
    verified = next(s for s in response.json()["steps"] if s["step"] == "verified")
    assert verified["state"] == "done"
    assert "effective rights match ClusterRole view" in verified["message"]
    assert "SubjectAccessReviews by the issuer" in verified["message"]


def test_subject_access_review_answers_for_the_named_subject_checked_with_kubectl(
    sim_env: SimEnv, kubectl: str, tmp_path: Path
) -> None:
    """The simulator's SubjectAccessReview judges spec.user/spec.groups, not the asker (who is
    system:masters here), as the real API server does; kubectl reads the answer."""
    sim_env.admin.create_cluster_role_binding("eks-breakglass", "cluster-admin", groups=["eks-breakglass"])
    asker = sim_env.sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    config = write_kubeconfig(tmp_path / "admin.kubeconfig", sim_env.sim, cert_key=asker)
    review = tmp_path / "sar.yaml"

    def ask(groups: list[str]) -> bool:
        review.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {
                        "user": "someone",
                        "groups": groups,
                        "resourceAttributes": {"verb": "get", "resource": "secrets"},
                    },
                }
            )
        )
        answer = kubectl_run(kubectl, config, "create", "-f", str(review), "-o", "json")
        assert answer.returncode == 0, answer.stderr
        document = json.loads(answer.stdout)
        assert document["kind"] == "SubjectAccessReview"
        return bool(document["status"]["allowed"])

    assert ask(["eks-breakglass"]) is True
    assert ask(["system:authenticated"]) is False
    # The Python client's call Lifeline uses gives the same answers.
    assert sim_env.admin.subject_can("someone", ["eks-breakglass"], "get", "secrets") is True
    assert sim_env.admin.subject_can("someone", [], "get", "secrets") is False
