"""The app's adapter (official Python client underneath) for every call the app makes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from app.integrations.aws import AwsClients
from app.integrations.eks_token import build_token
from app.integrations.kube.client import KubeAuth, KubeConnection, connect
from lifeline_simulator import SimulatedCluster
from tests.factories import SAMPLE_MANIFESTS, make_csr


def aws_clients() -> AwsClients:
    return AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)


def test_version_has_every_field(admin: KubeConnection) -> None:
    version = admin.version()
    assert version.git_version == "v1.30.9-eks-local"
    assert (version.major, version.minor_number) == ("1", 30)
    assert version.platform == "linux/amd64"


def test_whoami_for_x509_and_for_an_eks_token(
    sample_cluster: SimulatedCluster, admin: KubeConnection
) -> None:
    me = admin.whoami()
    assert me.username == "kubernetes-admin"
    assert me.groups == ("system:masters", "system:authenticated")
    token = build_token(aws_clients(), "us-west-2", sample_cluster.cluster_uid)
    with connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token.token)) as conn:
        iam = conn.whoami()
    assert iam.username == "kubernetes-admin"
    assert "system:masters" in iam.groups
    assert iam.extra["arn"] == ("arn:aws:iam::123456789012:user/moto",)


def test_can_i_reflects_bindings(sample_cluster: SimulatedCluster, admin: KubeConnection) -> None:
    cert, key = sample_cluster.issue_client_certificate("ops-bot", ["observers"])
    with connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key)) as conn:
        assert not conn.can_i("list", "pods", namespace="shop")
        admin.create_cluster_role_binding("observers-view", "view", groups=["observers"])
        assert conn.can_i("list", "pods", namespace="shop")
        assert conn.can_i("get", "deployments", group="apps", namespace="shop")
        assert not conn.can_i("delete", "pods", namespace="shop")
        assert not conn.can_i("list", "nodes")
    assert admin.can_i("delete", "nodes")


def test_csr_create_approve_issue_and_delete(sample_cluster: SimulatedCluster, admin: KubeConnection) -> None:
    csr_pem, key_pem = make_csr("breakglass-alice", ("eks-breakglass",))
    created = admin.create_csr(
        "breakglass-alice", csr_pem, expiration_seconds=7200, labels={"app": "lifeline"}
    )
    assert created.username == "kubernetes-admin"
    assert created.conditions == () and not created.issued
    approved = admin.approve_csr("breakglass-alice", reason="LifelineBreakGlass", message="approved by sre")
    assert approved.approved
    issued = admin.wait_for_certificate("breakglass-alice", timeout=5)
    assert issued.certificate_pem is not None
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=119) < lifetime <= dt.timedelta(hours=2)
    assert cert.issuer == x509.load_pem_x509_certificate(sample_cluster.ca_pem.encode()).subject
    # The issued certificate authenticates as CN / O, and only RBAC decides what it may do.
    with connect(
        sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(issued.certificate_pem, key_pem)
    ) as conn:
        me = conn.whoami()
        assert (me.username, me.groups) == ("breakglass-alice", ("eks-breakglass", "system:authenticated"))
        assert not conn.can_i("get", "nodes")
        admin.create_cluster_role_binding("breakglass", "cluster-admin", groups=["eks-breakglass"])
        assert conn.can_i("get", "nodes")
        assert len(conn.list_objects("v1", "nodes").items) == 2
    assert admin.delete_csr("breakglass-alice") is True
    assert admin.delete_csr("breakglass-alice") is False


def test_cluster_role_binding_create_get_list_delete(admin: KubeConnection) -> None:
    made = admin.create_cluster_role_binding(
        "lifeline-breakglass",
        "cluster-admin",
        users=["alice"],
        groups=["eks-breakglass"],
        labels={"app.kubernetes.io/managed-by": "lifeline"},
    )
    assert made.role_name == "cluster-admin" and made.uid and made.created_at is not None
    fetched = admin.get_cluster_role_binding("lifeline-breakglass")
    assert fetched is not None
    assert [(s.kind, s.name) for s in fetched.subjects] == [("User", "alice"), ("Group", "eks-breakglass")]
    managed = admin.list_cluster_role_bindings(label_selector="app.kubernetes.io/managed-by=lifeline")
    assert [b.name for b in managed] == ["lifeline-breakglass"]
    assert admin.delete_cluster_role_binding("lifeline-breakglass") is True
    assert admin.get_cluster_role_binding("lifeline-breakglass") is None
    assert admin.delete_cluster_role_binding("lifeline-breakglass") is False


def test_paged_lists_with_selectors(admin: KubeConnection) -> None:
    first = admin.list_objects("v1", "pods", limit=2)
    assert [p["metadata"]["name"] for p in first.items] == ["coredns-1", "db-0"]
    assert first.continue_token and first.remaining_item_count == 2
    assert first.items[0]["kind"] == "Pod" and first.items[0]["apiVersion"] == "v1"
    second = admin.list_objects("v1", "pods", limit=2, continue_token=first.continue_token)
    assert [p["metadata"]["name"] for p in second.items] == ["web-1", "web-2"]
    assert second.continue_token == ""
    everything = list(admin.iter_objects("v1", "pods", page_size=1))
    assert len(everything) == 4
    fronts = admin.list_objects("v1", "pods", namespace="shop", label_selector="app in (web),tier=front")
    assert [p["metadata"]["name"] for p in fronts.items] == ["web-1", "web-2"]
    by_field = admin.list_objects("v1", "pods", field_selector="metadata.namespace=kube-system")
    assert [p["metadata"]["name"] for p in by_field.items] == ["coredns-1"]
    classes = admin.list_objects("storage.k8s.io/v1", "storageclasses")
    assert classes.items[0]["provisioner"] == "ebs.csi.aws.com"
    assert int(first.resource_version) > 0


def test_tls_server_name_verifies_the_endpoint_hostname(simulated_cluster: object) -> None:
    host = "abcdef0123456789.gr7.us-west-2.eks.amazonaws.com"
    sim: SimulatedCluster = simulated_cluster(
        name="named", endpoint_hostname=host, manifests=SAMPLE_MANIFESTS
    )  # type: ignore[operator]
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key), tls_server_name=host) as conn:
        assert conn.version().major == "1"


def test_connection_keeps_key_material_off_disk(sample_cluster: SimulatedCluster) -> None:
    cert, key = sample_cluster.issue_client_certificate("kubernetes-admin", ["system:masters"])
    conn = connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key))
    key_path = conn.api_client.configuration.key_file
    assert key_path.startswith("/proc/self/fd/")
    # A memfd lives in no filesystem: its link target names the anonymous memory file.
    assert str(Path(key_path).readlink()).startswith("/memfd:lifeline-key")
    assert conn.version().major == "1"
    conn.close()
    assert not Path(key_path).exists()


def test_kube_auth_requires_one_method() -> None:
    with pytest.raises(ValueError, match="either a bearer token or a certificate"):
        KubeAuth()
    with pytest.raises(ValueError, match="both cert_pem and key_pem"):
        KubeAuth(cert_pem="x")
    assert "secret" not in repr(KubeAuth.bearer("secret"))
