"""API semantics: discovery, writes and patches, resourceVersion, YAML, namespaces, the disconnect switch."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.integrations.aws import AwsClients
from app.integrations.eks_token import build_token
from lifeline_simulator import SimulatedCluster
from tests.factories import write_kubeconfig
from tests.fixtures.kube import Kubectl


class Raw:
    """Plain HTTPS requests with the admin certificate, to check bodies and codes exactly."""

    def __init__(self, sim: SimulatedCluster, tmp_path: Path) -> None:
        cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
        (tmp_path / "c.pem").write_text(cert)
        (tmp_path / "k.pem").write_text(key)
        self.context = ssl.create_default_context(cadata=sim.ca_pem)
        self.context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
        self.url = sim.url

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "",
    ) -> tuple[int, Any]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", content_type)
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        if accept == "application/yaml":
            return status, yaml.safe_load(raw)
        return status, json.loads(raw) if raw else None


@pytest.fixture
def raw(sample_cluster: SimulatedCluster, tmp_path: Path) -> Raw:
    return Raw(sample_cluster, tmp_path)


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"a": "1"}},
        "data": data,
    }


def test_discovery_documents(raw: Raw) -> None:
    status, versions = raw("GET", "/api")
    assert status == 200 and versions["versions"] == ["v1"]
    groups = {g["name"] for g in raw("GET", "/apis")[1]["groups"]}
    assert {"apps", "certificates.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io"} <= groups
    resources = {r["name"]: r for r in raw("GET", "/apis/certificates.k8s.io/v1")[1]["resources"]}
    assert resources["certificatesigningrequests"]["shortNames"] == ["csr"]
    assert resources["certificatesigningrequests/approval"]["verbs"] == ["get", "patch", "update"]
    assert raw("GET", "/apis/example.com/v1")[0] == 404


def test_create_update_conflict_and_delete(raw: Raw) -> None:
    status, created = raw("POST", "/api/v1/namespaces/shop/configmaps", configmap("settings", {"k": "v"}))
    assert status == 201
    rv = created["metadata"]["resourceVersion"]
    assert (
        raw("POST", "/api/v1/namespaces/shop/configmaps", configmap("settings", {}))[1]["reason"]
        == "AlreadyExists"
    )
    created["data"] = {"k": "v2"}
    status, updated = raw("PUT", "/api/v1/namespaces/shop/configmaps/settings", created)
    assert status == 200 and int(updated["metadata"]["resourceVersion"]) > int(rv)
    created["metadata"]["resourceVersion"] = rv  # stale
    status, conflict = raw("PUT", "/api/v1/namespaces/shop/configmaps/settings", created)
    assert (status, conflict["reason"]) == (409, "Conflict")
    assert "the object has been modified" in conflict["message"]
    assert raw("DELETE", "/api/v1/namespaces/shop/configmaps/settings")[0] == 200
    assert raw("GET", "/api/v1/namespaces/shop/configmaps/settings")[1]["reason"] == "NotFound"


def test_invalid_objects_are_422_and_missing_namespaces_404(raw: Raw) -> None:
    status, body = raw("POST", "/api/v1/namespaces/shop/configmaps", configmap("Bad_Name", {}))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    status, body = raw("POST", "/api/v1/namespaces/nowhere/configmaps", configmap("x", {}))
    assert (status, body["message"]) == (404, 'namespaces "nowhere" not found')
    assert raw("POST", "/api/v1/namespaces/shop/configmaps", b"{not json")[0] == 400


def test_patch_types(raw: Raw) -> None:
    raw("POST", "/api/v1/namespaces/shop/configmaps", configmap("p", {"a": "1", "b": "2"}))
    _, merged = raw(
        "PATCH",
        "/api/v1/namespaces/shop/configmaps/p",
        {"data": {"a": None, "c": "3"}},
        "application/merge-patch+json",
    )
    assert merged["data"] == {"b": "2", "c": "3"}
    ops = [
        {"op": "replace", "path": "/data/b", "value": "20"},
        {"op": "add", "path": "/metadata/labels/x", "value": "y"},
    ]
    _, patched = raw("PATCH", "/api/v1/namespaces/shop/configmaps/p", ops, "application/json-patch+json")
    assert patched["data"]["b"] == "20" and patched["metadata"]["labels"] == {"a": "1", "x": "y"}
    bad = [{"op": "test", "path": "/data/b", "value": "nope"}]
    assert raw("PATCH", "/api/v1/namespaces/shop/configmaps/p", bad, "application/json-patch+json")[0] == 422
    assert (
        raw("PATCH", "/api/v1/namespaces/shop/configmaps/p", {"data": {}}, "application/apply-patch+yaml")[0]
        == 415
    )


def test_strategic_merge_patches_containers_by_name(raw: Raw) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "web:1"}, {"name": "proxy", "image": "envoy:1"}]
                },
            },
        },
    }
    assert raw("POST", "/apis/apps/v1/namespaces/shop/deployments", deployment)[0] == 201
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}
    _, patched = raw(
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        patch,
        "application/strategic-merge-patch+json",
    )
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("web", "web:2"), ("proxy", "envoy:1")]
    assert patched["metadata"]["generation"] == 2


def test_yaml_responses_and_tables(raw: Raw) -> None:
    status, node = raw("GET", "/api/v1/nodes/ip-10-0-1-10.ec2.internal", accept="application/yaml")
    assert status == 200 and node["kind"] == "Node"
    _, table = raw(
        "GET", "/api/v1/namespaces/shop/pods?limit=1", accept="application/json;as=Table;v=v1;g=meta.k8s.io"
    )
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:4] == ["Name", "Ready", "Status", "Restarts"]
    assert table["rows"][0]["cells"][:3] == ["db-0", "1/1", "Running"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["continue"]


def test_deleting_a_namespace_removes_its_objects(raw: Raw, sample_cluster: SimulatedCluster) -> None:
    status, deleted = raw("DELETE", "/api/v1/namespaces/shop")
    assert (status, deleted["status"]["phase"]) == (200, "Terminating")
    deadline = time.monotonic() + 10
    while raw("GET", "/api/v1/namespaces/shop")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert raw("GET", "/api/v1/namespaces/shop")[0] == 404
    _, pods = raw("GET", "/api/v1/pods")
    assert [p["metadata"]["namespace"] for p in pods["items"]] == ["kube-system"]


def ebs_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "db", "image": "postgres:16"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}],
        },
    }


def test_new_ebs_pods_stay_pending_while_disconnected(raw: Raw, sample_cluster: SimulatedCluster) -> None:
    assert raw("POST", "/-/disconnect") == (200, {"connected": False, "name": "plant7-local"})
    raw("POST", "/api/v1/namespaces/shop/pods", ebs_pod("db-1"))
    _, pending = raw("GET", "/api/v1/namespaces/shop/pods/db-1")  # after the scheduler bound it
    assert pending["spec"]["nodeName"]
    assert pending["status"]["phase"] == "Pending"
    assert pending["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    plain = ebs_pod("cache-0")
    plain["spec"].pop("volumes")
    raw("POST", "/api/v1/namespaces/shop/pods", plain)
    assert raw("GET", "/api/v1/namespaces/shop/pods/cache-0")[1]["status"]["phase"] == "Running"
    assert raw("POST", "/-/connect")[1]["connected"] is True
    assert raw("GET", "/api/v1/namespaces/shop/pods/db-1")[1]["status"]["phase"] == "Running"
    raw("POST", "/api/v1/namespaces/shop/pods", ebs_pod("db-2"))
    assert raw("GET", "/api/v1/namespaces/shop/pods/db-2")[1]["status"]["phase"] == "Running"


def test_kubectl_with_an_eks_token_follows_the_switch(
    kubectl: str, sample_cluster: SimulatedCluster, raw: Raw, tmp_path: Path
) -> None:
    clients = AwsClients(endpoint_url=None, connect_timeout=2, read_timeout=5, max_attempts=1)
    token = build_token(clients, "us-west-2", sample_cluster.cluster_uid).token
    run = Kubectl(kubectl, write_kubeconfig(tmp_path / "iam", sample_cluster, token=token))
    assert "ip-10-0-1-10.ec2.internal" in run("get", "nodes").stdout
    raw("POST", "/-/disconnect")
    failed = run("get", "nodes", check=False)
    assert failed.returncode != 0 and "You must be logged in" in failed.stderr
    raw("POST", "/-/connect")
    assert run("get", "nodes").returncode == 0


def test_kubectl_label_and_delete(admin_kubectl: Kubectl, raw: Raw) -> None:
    admin_kubectl("label", "pod", "web-1", "-n", "shop", "release=blue")
    assert raw("GET", "/api/v1/namespaces/shop/pods/web-1")[1]["metadata"]["labels"]["release"] == "blue"
    admin_kubectl("delete", "pod", "web-2", "-n", "shop", "--wait=false")
    assert raw("GET", "/api/v1/namespaces/shop/pods/web-2")[0] == 404
    missing = admin_kubectl("get", "pod", "nope", "-n", "shop", check=False)
    assert 'pods "nope" not found' in missing.stderr
