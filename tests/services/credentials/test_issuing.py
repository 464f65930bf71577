"""Issuing against the simulated EKS local cluster, checked with the real kubectl."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.integrations import pki
from app.integrations.kube import client as kube
from app.models import Credential
from tests.fixtures.credentials import SimEnv


def kubectl_run(kubectl: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def issue(client: TestClient, env: SimEnv, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/clusters/{env.cluster_name}/credentials", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def save_kubeconfig(client: TestClient, credential_id: int, path: Path) -> Path:
    response = client.get(f"/api/v1/credentials/{credential_id}/kubeconfig")
    assert response.status_code == 200, response.text
    path.write_text(response.text)
    path.chmod(0o600)
    return path


def test_kubeconfig_works_while_disconnected_and_revoke_forbids(
    client: TestClient, sim_env: SimEnv, kubectl: str, tmp_path: Path
) -> None:
    record = issue(client, sim_env, identity="lifeline:oncall", lifetime_seconds=3600)
    assert record["status"] == "active"
    assert [s["step"] for s in record["steps"]] == [
        "requested",
        "csr_created",
        "approved",
        "certificate_issued",
        "binding_created",
        "verified",
        "stored",
    ]
    assert all(s["state"] == "done" for s in record["steps"])
    assert "Outpost Lifeline" in record["steps"][2]["message"]
    config = save_kubeconfig(client, record["id"], tmp_path / "oncall.kubeconfig")

    sim_env.sim.disconnect()
    # IAM is refused while disconnected...
    from app.integrations.aws import AwsClients
    from app.integrations.eks_token import build_token

    token = build_token(AwsClients(None, 2, 5, 1), "us-west-2", sim_env.sim.cluster_uid)
    with (
        kube.connect(sim_env.sim.url, sim_env.sim.ca_pem, kube.KubeAuth.bearer(token.token)) as iam,
        pytest.raises(kube.KubeUnauthorized),
    ):
        iam.version()
    # ...and the x509 kubeconfig still works.
    nodes = kubectl_run(kubectl, config, "get", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    whoami = kubectl_run(kubectl, config, "auth", "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "lifeline:oncall" in whoami.stdout and "lifeline:breakglass" in whoami.stdout

    sim_env.sim.connect()
    revoked = client.post(f"/api/v1/credentials/{record['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert "can still authenticate as lifeline:oncall" in revoked.json()["notice"]
    forbidden = kubectl_run(kubectl, config, "get", "nodes")
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr or "forbidden" in forbidden.stderr
    assert sim_env.bindings() == []
    # A revoked credential is not handed out any more.
    assert client.get(f"/api/v1/credentials/{record['id']}/kubeconfig").status_code == 409


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048", "rsa-4096"])
def test_key_types_and_lifetime_come_from_the_certificate(
    client: TestClient, sim_env: SimEnv, kubectl: str, tmp_path: Path, key_type: str
) -> None:
    before = dt.datetime.now(dt.UTC)
    record = issue(client, sim_env, key_type=key_type, lifetime_seconds=7200)
    after = dt.datetime.now(dt.UTC)
    config_path = save_kubeconfig(client, record["id"], tmp_path / "k.kubeconfig")
    user = yaml.safe_load(config_path.read_text())["users"][0]["user"]
    cert = pki.parse_certificate(base64.b64decode(user["client-certificate-data"]))
    key_pem = base64.b64decode(user["client-key-data"])
    assert record["key_type"] == key_type
    expected_bits = {"ecdsa-p256": "EC", "rsa-2048": "RSA", "rsa-4096": "RSA"}[key_type]
    assert expected_bits in key_pem.decode() or b"BEGIN PRIVATE KEY" in key_pem
    assert pki.public_key_sha256_of_private_key(key_pem) == cert.public_key_sha256
    not_after = dt.datetime.fromisoformat(record["not_after"])
    assert not_after == cert.not_after
    assert before + dt.timedelta(seconds=7200 - 2) <= not_after <= after + dt.timedelta(seconds=7200 + 2)
    assert record["fingerprint_sha256"] == cert.fingerprint_sha256
    assert kubectl_run(kubectl, config_path, "get", "nodes").returncode == 0


def test_uploaded_csr_end_to_end(client: TestClient, sim_env: SimEnv, kubectl: str, tmp_path: Path) -> None:
    key = pki.generate_private_key(pki.KeyType.ecdsa_p256)
    csr = pki.build_csr(key.pem, "lifeline:admin", ("lifeline:breakglass",))
    record = issue(client, sim_env, custody="uploaded-csr", csr=csr, lifetime_seconds=1800)
    assert record["custody"] == "uploaded-csr" and record["identity"] == "lifeline:admin"
    verified = next(s for s in record["steps"] if s["step"] == "verified")
    assert verified["state"] == "done" and "kubectl auth whoami" in verified["message"]
    assert "SubjectAccessReviews as the issuer" in verified["message"]
    directory = tmp_path / "mine"
    directory.mkdir()
    config = save_kubeconfig(client, record["id"], directory / "kubeconfig")
    assert "client-key-data" not in config.read_text()
    (directory / "client.key").write_bytes(key.pem)
    (directory / "client.key").chmod(0o600)
    whoami = kubectl_run(kubectl, config, "auth", "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "lifeline:admin" in whoami.stdout
    assert kubectl_run(kubectl, config, "get", "nodes").returncode == 0


def test_renew_keeps_identity_and_binding(
    client: TestClient, sim_env: SimEnv, kubectl: str, tmp_path: Path
) -> None:
    first = issue(client, sim_env, lifetime_seconds=3600)
    renewed = client.post(f"/api/v1/credentials/{first['id']}/renew")
    assert renewed.status_code == 201, renewed.text
    second = renewed.json()
    assert second["status"] == "active" and second["renewal_of"] == first["id"]
    assert second["identity"] == first["identity"] and second["binding_name"] == first["binding_name"]
    assert second["fingerprint_sha256"] != first["fingerprint_sha256"]
    binding_step = next(s for s in second["steps"] if s["step"] == "binding_created")
    assert "kept" in binding_step["message"]
    old = client.get(f"/api/v1/credentials/{first['id']}").json()
    assert old["status"] == "renewed"
    assert sim_env.bindings() == [first["binding_name"]]
    config = save_kubeconfig(client, second["id"], tmp_path / "renewed.kubeconfig")
    assert kubectl_run(kubectl, config, "get", "nodes").returncode == 0


def test_verify_now_notices_a_deleted_binding(client: TestClient, sim_env: SimEnv) -> None:
    record = issue(client, sim_env, lifetime_seconds=3600)
    ok = client.post(f"/api/v1/credentials/{record['id']}/verify").json()
    assert ok["last_verified_ok"] is True
    assert f"SelfSubjectReview: {record['identity']}" in ok["last_verified_message"]
    sim_env.admin.delete_cluster_role_binding(record["binding_name"])
    bad = client.post(f"/api/v1/credentials/{record['id']}/verify").json()
    assert bad["last_verified_ok"] is False
    assert "missing" in bad["last_verified_message"]


def test_system_masters_binding_is_never_created(client: TestClient, sim_env: SimEnv) -> None:
    record = issue(client, sim_env, group="lifeline:breakglass", cluster_role="cluster-admin")
    binding = sim_env.admin.get_cluster_role_binding(record["binding_name"])
    assert binding is not None
    assert [(s.kind, s.name) for s in binding.subjects] == [("User", record["identity"])]
    assert binding.labels["app.kubernetes.io/managed-by"] == "outpost-lifeline"
    refused = client.post(
        f"/api/v1/clusters/{sim_env.cluster_name}/credentials", json={"group": "system:masters"}
    )
    assert refused.status_code == 422 and "system:masters" in refused.json()["detail"]


def test_issuing_while_disconnected_needs_the_issuer_kubeconfig(
    client: TestClient, sim_env: SimEnv, session: Session
) -> None:
    sim_env.sim.disconnect()
    response = client.post(f"/api/v1/clusters/{sim_env.cluster_name}/credentials", json={})
    assert response.status_code == 502
    body = response.json()
    assert body["status"] == "failed" and body["failed_step"] == "csr_created"
    assert "LIFELINE_ISSUER_KUBECONFIG" in body["error"]
    assert sim_env.csrs() == [] and sim_env.bindings() == []


def test_issuer_kubeconfig_issues_during_a_disconnect(
    app: Any, client: TestClient, sim_env: SimEnv, tmp_path: Path
) -> None:
    path = sim_env.sim.write_admin_kubeconfig(tmp_path / "admin.kubeconfig")
    app.state.settings = app.state.settings.model_copy(update={"issuer_kubeconfig": path})
    sim_env.sim.disconnect()
    record = issue(client, sim_env, lifetime_seconds=900)
    assert record["status"] == "active"


def test_direct_context_reaches_a_control_plane_ip_when_dns_is_gone(
    client: TestClient, sim_env: SimEnv, session: Session, kubectl: str, tmp_path: Path
) -> None:
    record = issue(client, sim_env, lifetime_seconds=3600)
    # The cluster's endpoint is a name that no longer resolves; its control-plane IP is known.
    credential = session.get(Credential, record["id"])
    assert credential is not None
    credential.cluster.endpoint = f"https://{sim_env.sim.endpoint_hostname}:{sim_env.sim.port}"
    credential.control_plane_ips = ["127.0.0.1"]
    session.commit()
    config = save_kubeconfig(client, record["id"], tmp_path / "direct.kubeconfig")
    contexts = [c["name"] for c in yaml.safe_load(config.read_text())["contexts"]]
    user = record["identity"]
    assert contexts == [f"{user}@edge-sim", f"{user}@edge-sim-direct-1"]
    direct = kubectl_run(kubectl, config, "--context", f"{user}@edge-sim-direct-1", "get", "nodes")
    assert direct.returncode == 0, direct.stderr
