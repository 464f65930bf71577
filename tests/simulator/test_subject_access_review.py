"""Issue 12: SubjectAccessReview (authorization.k8s.io/v1) asks about someone else's rights, evaluated by
the same authorizer as the self reviews; checked against real kubectl's `auth can-i --as --as-group`
(impersonation, answered by the SelfSubjectAccessReview path) and `kubectl create -f sar.yaml -o yaml`,
and through the official Python client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from lifeline_simulator import SimulatedCluster
from tests.factories import write_kubeconfig
from tests.fixtures.kube import Kubectl, python_client

QUESTIONS = (
    ("*", "*", ""),
    ("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
    ("get", "secrets", ""),
    ("list", "pods", ""),
    ("impersonate", "users", ""),
)


def _sar(user: str, groups: list[str], verb: str, resource: str, group: str) -> str:
    attrs = {"verb": verb, "resource": resource}
    if group:
        attrs["group"] = group
    spec: dict[str, Any] = {"resourceAttributes": attrs}
    if user:
        spec["user"] = user
    if groups:
        spec["groups"] = groups
    return yaml.safe_dump(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    )


def _review(kubectl: Kubectl, tmp_path: Path, *args: Any) -> dict[str, Any]:
    path = tmp_path / "sar.yaml"
    path.write_text(_sar(*args))
    out = kubectl("create", "-f", str(path), "-o", "yaml").stdout
    review: dict[str, Any] = yaml.safe_load(out)
    return review


def _can_i(kubectl: Kubectl, user: str, groups: list[str], verb: str, resource: str, group: str) -> bool:
    target = f"{resource}.{group}" if group and resource != "*" else resource
    args = ["auth", "can-i", verb, target, f"--as={user}", *[f"--as-group={g}" for g in groups]]
    answer = kubectl(*args, check=False).stdout.strip()
    assert answer in ("yes", "no"), answer
    return answer == "yes"


@pytest.fixture
def admin_kubectl_sar(kubectl: str, sample_cluster: SimulatedCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl, sample_cluster.write_admin_kubeconfig(tmp_path / "admin.kubeconfig"))


def test_a_group_binding_answers_the_review_as_impersonation_does(
    admin_kubectl_sar: Kubectl, tmp_path: Path
) -> None:
    admin = admin_kubectl_sar
    admin("create", "clusterrolebinding", "oncall-admins", "--clusterrole=cluster-admin", "--group=oncall")
    admin("create", "clusterrolebinding", "bob-view", "--clusterrole=view", "--user=bob")
    for groups in ([], ["oncall"]):
        for verb, resource, group in QUESTIONS:
            review = _review(admin, tmp_path, "bob", groups, verb, resource, group)
            assert review["kind"] == "SubjectAccessReview"
            assert review["spec"]["user"] == "bob"
            allowed = bool(review["status"].get("allowed"))
            # kubectl adds system:authenticated to an impersonated identity; the bindings here do not
            # depend on it, so both answers must agree.
            assert allowed == _can_i(admin, "bob", groups, verb, resource, group), (groups, verb, resource)
            expected = bool(groups) or (verb, resource) == ("list", "pods")
            assert allowed is expected, (groups, verb, resource)


def test_the_review_uses_exactly_the_groups_given(admin_kubectl_sar: Kubectl, tmp_path: Path) -> None:
    """No system:authenticated is added: a binding to it applies only when the review names it."""
    admin = admin_kubectl_sar
    admin(
        "create", "clusterrolebinding", "everyone-admin", "--clusterrole=cluster-admin",
        "--group=system:authenticated",
    )  # fmt: skip
    bare = _review(admin, tmp_path, "carol", [], "get", "secrets", "")
    assert bare["status"]["allowed"] is False
    named = _review(admin, tmp_path, "carol", ["system:authenticated"], "get", "secrets", "")
    assert named["status"]["allowed"] is True
    assert _can_i(admin, "carol", [], "get", "secrets", "")  # impersonation does add it
    masters = _review(admin, tmp_path, "", ["system:masters"], "*", "*", "")
    assert masters["status"]["allowed"] is True


def test_creating_a_review_needs_its_own_permission(
    kubectl: str, sample_cluster: SimulatedCluster, admin_kubectl_sar: Kubectl, tmp_path: Path
) -> None:
    # kubectl's default validation asks whether a kind without a PATCH operation is a CRD, as it does
    # against a real API server: vera may read CRDs (and nothing else) so the create reaches the server.
    admin_kubectl_sar(
        "create", "clusterrole", "crd-reader", "--verb=get,list",
        "--resource=customresourcedefinitions.apiextensions.k8s.io",
    )  # fmt: skip
    admin_kubectl_sar(
        "create", "clusterrolebinding", "vera-crd-reader", "--clusterrole=crd-reader", "--user=vera"
    )
    cert_key = sample_cluster.issue_client_certificate("vera", ())
    vera = Kubectl(kubectl, write_kubeconfig(tmp_path / "vera", sample_cluster, cert_key=cert_key))
    path = tmp_path / "sar.yaml"
    path.write_text(_sar("bob", [], "get", "pods", ""))
    refused = vera("create", "-f", str(path), "-o", "yaml", check=False)
    assert refused.returncode == 1
    assert (
        'subjectaccessreviews.authorization.k8s.io is forbidden: User "vera" cannot create resource '
        '"subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    ) in refused.stderr


def test_a_review_without_user_or_group_is_invalid(admin_kubectl_sar: Kubectl, tmp_path: Path) -> None:
    path = tmp_path / "sar.yaml"
    path.write_text(_sar("", [], "get", "pods", ""))
    refused = admin_kubectl_sar("create", "-f", str(path), check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'The SubjectAccessReview "" is invalid: spec.user: Invalid value: "": '
        "at least one of user or group must be specified"
    )


def test_the_python_client_creates_a_review(sample_cluster: SimulatedCluster, tmp_path: Path) -> None:
    with python_client(sample_cluster, tmp_path) as api:
        rbac = k8s.RbacAuthorizationV1Api(api)
        rbac.create_cluster_role_binding(
            k8s.V1ClusterRoleBinding(
                metadata=k8s.V1ObjectMeta(name="ops-edit"),
                role_ref=k8s.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"
                ),
                subjects=[k8s.RbacV1Subject(kind="Group", name="ops", api_group="rbac.authorization.k8s.io")],
            )
        )
        authz = k8s.AuthorizationV1Api(api)

        def ask(groups: list[str]) -> bool:
            body = k8s.V1SubjectAccessReview(
                spec=k8s.V1SubjectAccessReviewSpec(
                    user="dana",
                    groups=groups,
                    resource_attributes=k8s.V1ResourceAttributes(
                        verb="create", resource="pods", namespace="shop"
                    ),
                )
            )
            return bool(authz.create_subject_access_review(body).status.allowed)

        assert ask(["ops"]) is True
        assert ask([]) is False
