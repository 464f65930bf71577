"""What the simulator refuses, and how: 401/403/422 with Status bodies, exactly like a local cluster."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from app.integrations.aws import AwsClients
from app.integrations.eks_token import build_token
from app.integrations.kube.client import (
    CsrNotIssued,
    KubeAuth,
    KubeConnection,
    KubeForbidden,
    KubeInvalid,
    KubeUnauthorized,
    connect,
)
from lifeline_simulator import ManualClock, SimulatedCluster
from lifeline_simulator.pki import ClusterCA
from tests.factories import SAMPLE_MANIFESTS, make_csr, write_kubeconfig
from tests.fixtures.kube import Kubectl


def aws_clients() -> AwsClients:
    return AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)


def raw_get(
    sim: SimulatedCluster, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cadata=sim.ca_pem)
    request = urllib.request.Request(sim.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_no_credentials_is_401_with_a_status_body(sample_cluster: SimulatedCluster) -> None:
    status, body = raw_get(sample_cluster, "/api/v1/nodes")
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    # /version and health stay public, as on a real API server.
    assert raw_get(sample_cluster, "/version")[0] == 200


def test_kubectl_without_a_certificate_is_told_to_log_in(
    kubectl: str, sample_cluster: SimulatedCluster, tmp_path: Path
) -> None:
    run = Kubectl(kubectl, write_kubeconfig(tmp_path / "anon", sample_cluster))
    result = run("get", "nodes", check=False, stdin="")
    assert result.returncode != 0
    # kubectl answers a 401 with no credentials configured by asking for a username.
    assert "Please enter Username" in result.stdout


def test_certificate_from_another_ca_is_rejected(sample_cluster: SimulatedCluster) -> None:
    foreign = ClusterCA.generate("elsewhere", dt.datetime.now(dt.UTC))
    now = dt.datetime.now(dt.UTC)
    cert, key = foreign.client_certificate(
        "kubernetes-admin", ("system:masters",), now, now + dt.timedelta(days=1)
    )
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key)) as conn,
        pytest.raises(KubeUnauthorized) as caught,
    ):
        conn.list_objects("v1", "nodes")
    assert caught.value.status == 401


def test_expired_certificate_is_rejected(
    sample_cluster: SimulatedCluster, kubectl: str, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = sample_cluster.issue_client_certificate(
        "kubernetes-admin",
        ["system:masters"],
        not_before=now - dt.timedelta(days=2),
        not_after=now - dt.timedelta(hours=1),
    )
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(*expired)) as conn,
        pytest.raises(KubeUnauthorized),
    ):
        conn.whoami()
    result = Kubectl(kubectl, write_kubeconfig(tmp_path / "old", sample_cluster, cert_key=expired))(
        "get", "pods", check=False
    )
    assert result.returncode != 0
    assert "You must be logged in to the server" in result.stderr


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "k8s-aws-v1.!!!",
        "k8s-aws-v1."
        + base64.urlsafe_b64encode(b"https://evil.example.com/?Action=GetCallerIdentity").decode(),
    ],
)
def test_malformed_tokens_are_rejected(sample_cluster: SimulatedCluster, token: str) -> None:
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token)) as conn,
        pytest.raises(KubeUnauthorized),
    ):
        conn.whoami()


def test_token_without_the_signed_cluster_header_is_rejected(sample_cluster: SimulatedCluster) -> None:
    sts = aws_clients().client("sts", "us-west-2")
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    token = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token)) as conn,
        pytest.raises(KubeUnauthorized),
    ):
        conn.whoami()


def test_token_for_another_cluster_is_rejected(sample_cluster: SimulatedCluster) -> None:
    token = build_token(aws_clients(), "us-west-2", "another-cluster-id")
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token.token)) as conn,
        pytest.raises(KubeUnauthorized),
    ):
        conn.whoami()


def test_token_with_a_wrong_secret_is_rejected(
    sample_cluster: SimulatedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    token = build_token(aws_clients(), "us-west-2", sample_cluster.cluster_uid)
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token.token)) as conn,
        pytest.raises(KubeUnauthorized),
    ):
        conn.whoami()


def test_stale_token_is_rejected_after_15_minutes(simulated_cluster: Callable[..., SimulatedCluster]) -> None:
    clock = ManualClock()
    sim = simulated_cluster(name="clocked", clock=clock)
    token = build_token(aws_clients(), "us-west-2", sim.cluster_uid)
    with connect(sim.url, sim.ca_pem, KubeAuth.bearer(token.token)) as conn:
        clock.advance(minutes=14)
        assert conn.whoami().username == "kubernetes-admin"
        clock.advance(minutes=2)
        with pytest.raises(KubeUnauthorized):
            conn.whoami()


def test_tokens_fail_while_disconnected_but_x509_works(
    sample_cluster: SimulatedCluster, admin: KubeConnection
) -> None:
    token = build_token(aws_clients(), "us-west-2", sample_cluster.cluster_uid)
    with connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.bearer(token.token)) as iam:
        assert iam.whoami().username == "kubernetes-admin"
        sample_cluster.disconnect()
        with pytest.raises(KubeUnauthorized):
            iam.whoami()
        assert admin.whoami().username == "kubernetes-admin"
        assert len(admin.list_objects("v1", "nodes").items) == 2
        sample_cluster.connect()
        assert iam.whoami().username == "kubernetes-admin"


def test_forbidden_verb_is_403_with_the_api_server_wording(
    sample_cluster: SimulatedCluster, admin: KubeConnection
) -> None:
    admin.create_cluster_role_binding("viewers", "view", users=["vera"])
    cert, key = sample_cluster.issue_client_certificate("vera")
    with connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key)) as conn:
        assert len(conn.list_objects("v1", "pods", namespace="shop").items) == 3
        with pytest.raises(KubeForbidden) as caught:
            conn.create_cluster_role_binding("escalate", "cluster-admin", users=["vera"])
    assert caught.value.reason == "Forbidden"
    assert caught.value.message == (
        'clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "vera" cannot create resource '
        '"clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )


def test_csr_for_system_masters_is_rejected_at_creation(admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("root", ("system:masters",))
    with pytest.raises(KubeForbidden) as caught:
        admin.create_csr("root", csr_pem)
    assert "system:masters group is not allowed" in caught.value.message
    assert admin.list_objects("certificates.k8s.io/v1", "certificatesigningrequests").items == ()


@pytest.mark.parametrize(
    "usages",
    [
        ("server auth",),
        ("client auth", "server auth"),
        ("digital signature", "key encipherment"),
        ("client auth", "cert sign"),
    ],
)
def test_wrong_usages_stay_approved_without_a_certificate(
    admin: KubeConnection, usages: tuple[str, ...]
) -> None:
    csr_pem, _ = make_csr("bob", ("ops",))
    admin.create_csr("bob", csr_pem, usages=usages)
    info = admin.approve_csr("bob", reason="Test", message="approve")
    assert info.approved and not info.issued
    with pytest.raises(CsrNotIssued, match="approved but no certificate"):
        admin.wait_for_certificate("bob", timeout=0.5, interval=0.1)


def test_allowed_usages_issue(admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("carol")
    admin.create_csr("carol", csr_pem, usages=("digital signature", "key encipherment", "client auth"))
    admin.approve_csr("carol", reason="Test", message="approve")
    assert admin.wait_for_certificate("carol", timeout=2).issued


def test_expiration_below_600_seconds_is_invalid(admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("dave")
    with pytest.raises(KubeInvalid) as caught:
        admin.create_csr("dave", csr_pem, expiration_seconds=599)
    assert "spec.expirationSeconds" in caught.value.message
    assert "less than 600 seconds" in caught.value.message


def test_expiration_above_a_year_is_capped_at_one_year(admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("erin")
    admin.create_csr("erin", csr_pem, expiration_seconds=2 * 365 * 24 * 3600)
    admin.approve_csr("erin", reason="Test", message="approve")
    info = admin.wait_for_certificate("erin", timeout=2)
    assert info.certificate_pem is not None
    cert = x509.load_pem_x509_certificate(info.certificate_pem.encode())
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364) < lifetime <= dt.timedelta(days=365)


def test_denied_and_approved_are_exclusive_and_permanent(admin: KubeConnection) -> None:
    csr_pem, _ = make_csr("frank")
    admin.create_csr("frank", csr_pem)
    admin.deny_csr("frank", reason="NotToday", message="no")
    with pytest.raises(KubeInvalid, match="mutually exclusive"):
        admin.approve_csr("frank", reason="Changed", message="mind")
    with pytest.raises(CsrNotIssued, match="denied"):
        admin.wait_for_certificate("frank", timeout=1)


def test_approval_needs_approve_on_the_signer(
    sample_cluster: SimulatedCluster, admin: KubeConnection
) -> None:
    csr_pem, _ = make_csr("gina")
    admin.create_csr("gina", csr_pem)
    admin.create_cluster_role_binding("csr-editor", "edit", users=["ed"])
    role_rules = [
        {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests", "certificatesigningrequests/approval"],
            "verbs": ["get", "list", "update"],
        }
    ]
    sample_cluster.load(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "csr-updater"},
                "rules": role_rules,
            }
        ]
    )
    admin.create_cluster_role_binding("csr-updater", "csr-updater", users=["ed"])
    cert, key = sample_cluster.issue_client_certificate("ed")
    with (
        connect(sample_cluster.url, sample_cluster.ca_pem, KubeAuth.x509(cert, key)) as conn,
        pytest.raises(KubeForbidden, match="not permitted to approve"),
    ):
        conn.approve_csr("gina", reason="Test", message="approve")
    assert not admin.get_csr("gina").approved


def test_decided_csrs_are_removed_after_an_hour(simulated_cluster: Callable[..., SimulatedCluster]) -> None:
    clock = ManualClock()
    sim = simulated_cluster(name="gc", clock=clock)
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"], days=3)
    with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key)) as conn:
        for name in ("issued", "denied", "pending"):
            conn.create_csr(name, make_csr(name)[0])
        conn.approve_csr("issued", reason="Test", message="ok")
        conn.deny_csr("denied", reason="Test", message="no")
        clock.advance(minutes=59)
        listed = conn.list_objects("certificates.k8s.io/v1", "certificatesigningrequests")
        assert {c["metadata"]["name"] for c in listed.items} == {"issued", "denied", "pending"}
        clock.advance(minutes=2)
        listed = conn.list_objects("certificates.k8s.io/v1", "certificatesigningrequests")
        assert {c["metadata"]["name"] for c in listed.items} == {"pending"}
        clock.advance(hours=23)
        assert conn.list_objects("certificates.k8s.io/v1", "certificatesigningrequests").items == ()


def test_unknown_resources_and_bad_selectors(sample_cluster: SimulatedCluster, admin: KubeConnection) -> None:
    status, _body = raw_get(sample_cluster, "/api/v1/nodes", {})
    assert status == 401
    with pytest.raises(Exception, match=r"field label not supported: spec\.bogus"):
        admin.list_objects("v1", "pods", field_selector="spec.bogus=1")
    with pytest.raises(Exception, match="404"):
        admin.list_objects("v1", "widgets")
    with pytest.raises(Exception, match='nodes "nope" not found'):
        admin.get_object("v1", "nodes", "nope")


def test_manifests_with_one_bad_document_load_nothing(tmp_path: Path) -> None:
    from lifeline_simulator import ManifestError

    path = tmp_path / "dump.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name, namespace: ok}\n"
    )
    with pytest.raises(ManifestError, match=r"dump.yaml: document 2: Pod name 'Bad_Name' is invalid"):
        SimulatedCluster(name="bad", manifests=path)
    path.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    with pytest.raises(ManifestError, match=r"document 1: Widget in example\.com/v1 is not served"):
        SimulatedCluster(name="bad", manifests=path)
    path.write_text("kind: List\nitems:\n- apiVersion: v1\n  kind: Node\n- 3\n")
    with pytest.raises(ManifestError, match=r"document 1, item 1: Node has no metadata\.name"):
        SimulatedCluster(name="bad", manifests=path)
    path.write_text("a: [1, 2\n")
    with pytest.raises(ManifestError, match=r"document 1: invalid YAML at line 2"):
        SimulatedCluster(name="bad", manifests=path)


def test_sample_manifests_count(sample_cluster: SimulatedCluster) -> None:
    assert sample_cluster.load([]) == 0
    assert len(SAMPLE_MANIFESTS) == 9
