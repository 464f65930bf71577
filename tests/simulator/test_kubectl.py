"""The real kubectl (1.27-1.33 dispatcher) against the simulator, as an operator would use it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from app.integrations.kube.client import KubeConnection
from lifeline_simulator import SimulatedCluster
from tests.factories import make_csr, write_kubeconfig
from tests.fixtures.kube import Kubectl


def test_get_nodes_prints_the_table_columns(admin_kubectl: Kubectl) -> None:
    out = admin_kubectl("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(rows) == {"ip-10-0-1-10.ec2.internal", "ip-10-0-1-11.ec2.internal"}
    assert rows["ip-10-0-1-10.ec2.internal"][1] == "Ready"
    assert rows["ip-10-0-1-10.ec2.internal"][4] == "v1.30.9-eks"


def test_get_pods_all_namespaces_and_selectors(admin_kubectl: Kubectl) -> None:
    out = admin_kubectl("get", "pods", "-A").stdout.splitlines()
    assert out[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    pairs = {tuple(line.split()[:2]) for line in out[1:]}
    assert pairs == {("kube-system", "coredns-1"), ("shop", "db-0"), ("shop", "web-1"), ("shop", "web-2")}
    selected = admin_kubectl("get", "pods", "-n", "shop", "-l", "app=web", "-o", "name").stdout.split()
    assert selected == ["pod/web-1", "pod/web-2"]


def test_output_json_and_yaml(admin_kubectl: Kubectl) -> None:
    as_json = json.loads(admin_kubectl("get", "pod", "web-1", "-n", "shop", "-o", "json").stdout)
    assert as_json["kind"] == "Pod"
    assert as_json["spec"]["containers"][0]["image"].endswith("web:1.4")
    assert as_json["metadata"]["resourceVersion"]
    as_yaml = yaml.safe_load(admin_kubectl("get", "nodes", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "List"
    assert [item["metadata"]["name"] for item in as_yaml["items"]] == [
        "ip-10-0-1-10.ec2.internal",
        "ip-10-0-1-11.ec2.internal",
    ]


def test_auth_whoami_shows_the_certificate_identity(admin_kubectl: Kubectl) -> None:
    out = admin_kubectl("auth", "whoami", "-o", "json").stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "kubernetes-admin"
    assert "system:masters" in info["groups"]


def test_auth_can_i_follows_rbac(
    kubectl: str, sample_cluster: SimulatedCluster, admin: KubeConnection, tmp_path: Path
) -> None:
    viewer = sample_cluster.issue_client_certificate("vera", ["auditors"])
    admin.create_cluster_role_binding("auditors-view", "view", groups=["auditors"])
    run = Kubectl(kubectl, write_kubeconfig(tmp_path / "vera", sample_cluster, cert_key=viewer))
    assert run("auth", "can-i", "list", "pods", "-n", "shop").stdout.strip() == "yes"
    denied = run("auth", "can-i", "delete", "pods", "-n", "shop", check=False)
    assert denied.returncode == 1
    assert denied.stdout.strip() == "no"
    assert run("auth", "can-i", "list", "nodes", check=False).stdout.strip() == "no"


def test_certificate_approve_issues_the_certificate(admin_kubectl: Kubectl, admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("breakglass-alice", ("eks-breakglass",))
    admin.create_csr("alice", csr_pem, expiration_seconds=3600)
    out = admin_kubectl("certificate", "approve", "alice").stdout
    assert "approved" in out
    info = admin.get_csr("alice")
    assert info.approved and info.issued
    listing = admin_kubectl("get", "csr").stdout
    assert "Approved,Issued" in listing
    assert "kubernetes.io/kube-apiserver-client" in listing


def test_create_clusterrolebinding(admin_kubectl: Kubectl, admin: KubeConnection) -> None:
    admin_kubectl(
        "create", "clusterrolebinding", "breakglass", "--clusterrole=cluster-admin", "--group=eks-breakglass"
    )
    binding = admin.get_cluster_role_binding("breakglass")
    assert binding is not None
    assert binding.role_name == "cluster-admin"
    assert [(s.kind, s.name) for s in binding.subjects] == [("Group", "eks-breakglass")]
    again = admin_kubectl(
        "create", "clusterrolebinding", "breakglass", "--clusterrole=view", "--user=x", check=False
    )
    assert again.returncode != 0
    assert "already exists" in again.stderr
