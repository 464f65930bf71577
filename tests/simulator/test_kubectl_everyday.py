"""Issue 14: everyday kubectl against the simulator with kubectl 1.29 and 1.31 (impersonation, scale,
drain with a PodDisruptionBudget, the containers' refusals, health checks), and the same reads through
the official Python client. One simulator per version, shared by the module; tests use own namespaces."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from lifeline_simulator import SimulatedCluster
from lifeline_simulator.resources import BY_GROUP_PLURAL
from lifeline_simulator.subresources import NO_CONTAINERS
from tests.simulator.conftest import SAMPLE_MANIFESTS, Kubectl, node, pod, write_kubeconfig

VERSIONS = ("1.29.14", "1.31.9")


@dataclass
class Cluster:
    sim: SimulatedCluster
    admin: Kubectl
    home: Path

    def user(self, name: str, groups: tuple[str, ...] = ()) -> Kubectl:
        cert_key = self.sim.issue_client_certificate(name, groups)
        return Kubectl(self.admin.binary, write_kubeconfig(self.home / name, self.sim, cert_key=cert_key))


@pytest.fixture(scope="module", params=VERSIONS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(binary).exists():
        pytest.fail("kubectl is missing") if os.environ.get("CI") else pytest.skip("kubectl is missing")
    sim = SimulatedCluster(name="everyday", manifests=SAMPLE_MANIFESTS, kubernetes_version=request.param)
    sim.start()
    home = tmp_path_factory.mktemp(f"everyday-{request.param}")
    try:
        yield Cluster(sim, Kubectl(binary, sim.write_admin_kubeconfig(home / "admin")), home)
    finally:
        sim.stop()


# ------------------------------------------------------------------------------------ impersonation


def test_can_i_as_a_service_account_answers_for_it(cluster: Cluster) -> None:
    denied = cluster.admin(
        "auth", "can-i", "get", "pods", "--as=system:serviceaccount:default:default", check=False
    )
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    allowed = cluster.admin("auth", "can-i", "get", "pods", "-n", "shop")
    assert allowed.stdout.strip() == "yes"


def test_get_as_an_unbound_user_is_forbidden_for_that_user(cluster: Cluster) -> None:
    result = cluster.admin("get", "pods", "-n", "shop", "--as=nobody", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "nobody" cannot list resource "pods" '
        'in API group "" in the namespace "shop"'
    )


def test_whoami_as_shows_the_impersonated_user(cluster: Cluster) -> None:
    out = cluster.admin("auth", "whoami", "--as=bob", "--as-group=devs").stdout.splitlines()
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1].strip() for line in out[1:]}
    assert rows == {"Username": "bob", "Groups": "[devs system:authenticated]"}


def test_impersonation_needs_the_impersonate_verb(cluster: Cluster) -> None:
    vera = cluster.user("vera", ("auditors",))
    cluster.admin("create", "clusterrolebinding", "auditors-view", "--clusterrole=view", "--group=auditors")
    refused = vera("get", "pods", "-n", "shop", "--as=kubernetes-admin", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        'Error from server (Forbidden): users "kubernetes-admin" is forbidden: User "vera" cannot '
        'impersonate resource "users" in API group "" at the cluster scope'
    )
    cluster.admin(
        "create",
        "clusterrole",
        "impersonate-ops",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=ops",
    )
    cluster.admin("create", "clusterrolebinding", "vera-ops", "--clusterrole=impersonate-ops", "--user=vera")
    cluster.admin("create", "clusterrolebinding", "ops-nodes", "--clusterrole=cluster-admin", "--user=ops")
    assert (
        vera("get", "nodes", "-o", "name", "--as=ops").stdout.split()[0] == "node/ip-10-0-1-10.ec2.internal"
    )
    assert vera("auth", "can-i", "list", "nodes", check=False).stdout.strip() == "no"


def test_can_i_list_for_an_unbound_user_shows_only_real_pairs(cluster: Cluster) -> None:
    out = cluster.admin("auth", "can-i", "--list", "--as=nobody").stdout
    resources = sorted(line.split()[0] for line in out.splitlines()[1:] if not line.startswith(" "))
    assert resources == [
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
    ]
    assert "[/readyz]" in out


# ------------------------------------------------------------------------------------ scale, drain


def test_scale_deployment_prints_scaled_and_changes_replicas(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "scaling")
    cluster.admin("create", "deployment", "api", "--image=nginx:1.27", "-n", "scaling")
    result = cluster.admin("scale", "deployment", "api", "--replicas=3", "-n", "scaling")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "deployment.apps/api scaled", "")
    spec = cluster.admin("get", "deploy", "api", "-n", "scaling", "-o", "jsonpath={.spec.replicas}").stdout
    assert spec == "3"
    scale = cluster.admin("get", "--raw", "/apis/apps/v1/namespaces/scaling/deployments/api/scale").stdout
    assert '"kind":"Scale"' in scale.replace(" ", "")
    assert '"apiVersion":"autoscaling/v1"' in scale.replace(" ", "")


def test_drain_is_blocked_by_a_pod_disruption_budget(cluster: Cluster) -> None:
    cluster.sim.load(
        [
            node("ip-10-0-9-9.ec2.internal", "10.0.9.9"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "drain"}},
            *[
                {
                    **pod("drain", f"pay-{i}", "pay:1", {"app": "pay"}),
                    "spec": {
                        "nodeName": "ip-10-0-9-9.ec2.internal",
                        "containers": [{"name": "main", "image": "pay:1"}],
                    },
                }
                for i in (1, 2)
            ],
        ]
    )
    for p in ("pay-1", "pay-2"):
        obj = cluster.sim.store.get(BY_GROUP_PLURAL[("", "pods")], "drain", p)
        assert obj["spec"]["nodeName"] == "ip-10-0-9-9.ec2.internal"
    created = cluster.admin("create", "pdb", "pay", "--selector=app=pay", "--min-available=2", "-n", "drain")
    assert created.stdout.strip() == "poddisruptionbudget.policy/pay created"
    result = cluster.admin("drain", "ip-10-0-9-9.ec2.internal", "--force", "--timeout=2s", check=False)
    assert result.returncode == 1
    assert "node/ip-10-0-9-9.ec2.internal cordoned" in result.stdout
    assert (
        'error when evicting pods/"pay-1" -n "drain" (will retry after 5s): '
        "Cannot evict pod as it would violate the pod's disruption budget."
    ) in result.stderr
    names = cluster.admin("get", "pods", "-n", "drain", "-o", "name").stdout.split()
    assert names == ["pod/pay-1", "pod/pay-2"]  # evicted nothing
    row = cluster.admin("get", "pdb", "pay", "-n", "drain").stdout.splitlines()[1].split()
    assert row[:4] == ["pay", "2", "N/A", "0"]


# --------------------------------------------------------------------------- refusals, health


@pytest.mark.parametrize(
    "args",
    [("logs", "web-1"), ("exec", "web-1", "--", "ls"), ("port-forward", "pod/web-1", "18080:80")],
    ids=["logs", "exec", "port-forward"],
)
def test_container_endpoints_are_refused_with_a_sentence(cluster: Cluster, args: tuple[str, ...]) -> None:
    result = cluster.admin("-n", "shop", *args, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(NO_CONTAINERS)
    assert "could not find the requested resource" not in result.stderr


def test_readyz_verbose_lists_the_checks(cluster: Cluster) -> None:
    out = cluster.admin("get", "--raw", "/readyz?verbose").stdout.splitlines()
    assert out[0] == "[+]ping ok"
    assert "[+]etcd ok" in out
    assert out[-1] == "readyz check passed"
    assert cluster.admin("get", "--raw", "/readyz").stdout == "ok"


def test_create_ignores_a_client_sent_null_creation_timestamp(cluster: Cluster, tmp_path: Path) -> None:
    cluster.admin("create", "namespace", "stamps")
    manifest = cluster.admin(
        "create",
        "configmap",
        "settings",
        "--from-literal=a=1",
        "-n",
        "stamps",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    assert "creationTimestamp: null" in manifest
    path = tmp_path / "cm.yaml"
    path.write_text(manifest)
    cluster.admin("create", "-f", str(path))
    row = cluster.admin("get", "configmap", "settings", "-n", "stamps").stdout.splitlines()[1].split()
    assert row[0] == "settings"
    assert row[-1] != "<unknown>"


# ----------------------------------------------------------------------- the official Python client


def _api_client(sim: SimulatedCluster, tmp_path: Path) -> k8s.ApiClient:
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    files = {}
    for name, text in (("ca", sim.ca_pem), ("cert", cert), ("key", key)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(text)
    config = k8s.Configuration()
    config.host = sim.url
    config.ssl_ca_cert, config.cert_file, config.key_file = (str(files[n]) for n in ("ca", "cert", "key"))
    return k8s.ApiClient(config)


def test_python_client_reads_the_same(cluster: Cluster, tmp_path: Path) -> None:
    api = _api_client(cluster.sim, tmp_path)
    try:
        apps = k8s.AppsV1Api(api)
        core = k8s.CoreV1Api(api)
        cluster.admin("create", "namespace", "py")
        cluster.admin("create", "deployment", "py", "--image=nginx:1.27", "-n", "py")
        scale = apps.patch_namespaced_deployment_scale("py", "py", {"spec": {"replicas": 4}})
        assert (scale.kind, scale.api_version, scale.spec.replicas) == ("Scale", "autoscaling/v1", 4)
        assert apps.read_namespaced_deployment("py", "py").spec.replicas == 4
        assert apps.read_namespaced_deployment_scale("py", "py").status.selector == "app=py"
        with pytest.raises(k8s.ApiException) as refused:
            core.read_namespaced_pod_log("web-1", "shop")
        assert refused.value.status == 400
        assert NO_CONTAINERS in str(refused.value.body)
        policy = k8s.PolicyV1Api(api)
        policy.create_namespaced_pod_disruption_budget(
            "shop",
            {
                "metadata": {"name": "front"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            },
        )
        with pytest.raises(k8s.ApiException) as blocked:
            core.create_namespaced_pod_eviction(
                "web-1",
                "shop",
                {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1"}},
            )
        assert blocked.value.status == 429
        assert "The disruption budget front needs 2 healthy pods and has 2 currently" in str(
            blocked.value.body
        )
        whoami = k8s.AuthenticationV1Api(api)
        review = whoami.create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        assert review.status.user_info.username == "kubernetes-admin"
    finally:
        api.close()


def test_openapi_documents_through_the_client(cluster: Cluster, tmp_path: Path) -> None:
    api = _api_client(cluster.sim, tmp_path)

    def get(path: str) -> Any:
        response = api.rest_client.request("GET", cluster.sim.url + path)
        response.read()
        assert response.status == 200
        return json.loads(response.data)

    try:
        root = get("/openapi/v3")
        assert "apis/apps/v1" in root["paths"]
        doc = get(root["paths"]["api/v1"]["serverRelativeURL"])
        pod_patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
        assert "fieldValidation" in [p["name"] for p in pod_patch["parameters"]]
        assert "io.k8s.api.core.v1.Toleration" in doc["components"]["schemas"]
    finally:
        api.close()


def test_healthz_is_public_like_kube_apiserver(cluster: Cluster) -> None:
    context = ssl.create_default_context(cadata=cluster.sim.ca_pem)
    with urllib.request.urlopen(cluster.sim.url + "/livez?verbose", context=context) as response:
        assert response.read().decode().splitlines()[-1] == "livez check passed"
    assert base64.b64decode(cluster.sim.ca_data).decode() == cluster.sim.ca_pem
