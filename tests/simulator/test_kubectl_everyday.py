"""Issue 14: everyday kubectl against the simulator with kubectl 1.29 and 1.31 (impersonation, scale,
drain with a PodDisruptionBudget, the containers' refusals, health checks), and the same reads through
the official Python client. One simulator per version, shared by the module; tests use own namespaces."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from lifeline_simulator import SimulatedCluster, controllers
from lifeline_simulator.resources import BY_GROUP_PLURAL
from lifeline_simulator.subresources import NO_CONTAINERS
from tests.factories import SAMPLE_MANIFESTS, write_kubeconfig
from tests.factories import _reported_node as node
from tests.factories import _running_pod as pod
from tests.fixtures.kube import Kubectl, python_client

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
            node("ip-10-0-9-9.ec2.internal", "127.0.9.9"),
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


def test_python_client_reads_the_same(cluster: Cluster, tmp_path: Path) -> None:
    api = python_client(cluster.sim, tmp_path)
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
    api = python_client(cluster.sim, tmp_path)

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


# ------------------------------------------------------------------------------------ defaulting


def _jsonpath(cluster: Cluster, kind: str, name: str, namespace: str, path: str) -> str:
    return cluster.admin("get", kind, name, "-n", namespace, "-o", f"jsonpath={path}").stdout


def test_a_new_deployment_gets_the_api_defaults(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "defaults")
    created = cluster.admin("create", "deployment", "web", "--image=nginx:1.27", "-n", "defaults")
    assert (created.returncode, created.stdout.strip()) == (0, "deployment.apps/web created")
    spec = json.loads(_jsonpath(cluster, "deploy", "web", "defaults", "{.spec}"))
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod_spec = spec["template"]["spec"]
    assert {k: pod_spec[k] for k in ("restartPolicy", "dnsPolicy", "schedulerName", "securityContext")} == {
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "securityContext": {},
    }
    container = pod_spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    latest = cluster.admin("create", "deployment", "edge", "--image=nginx", "-n", "defaults")
    assert latest.returncode == 0
    policy = _jsonpath(
        cluster, "deploy", "edge", "defaults", "{.spec.template.spec.containers[0].imagePullPolicy}"
    )
    assert policy == "Always"


def test_a_new_service_gets_a_cluster_ip_and_families(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "svc-defaults")
    created = cluster.admin("create", "service", "clusterip", "api", "--tcp=80:8080", "-n", "svc-defaults")
    assert created.stdout.strip() == "service/api created"
    spec = json.loads(_jsonpath(cluster, "svc", "api", "svc-defaults", "{.spec}"))
    assert spec["clusterIP"].startswith("127.100.")  # loopback only (EKS: 10.100.0.0/16)
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert (spec["type"], spec["sessionAffinity"], spec["ipFamilies"], spec["ipFamilyPolicy"]) == (
        "ClusterIP",
        "None",
        ["IPv4"],
        "SingleStack",
    )
    assert spec["ports"][0] == {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
    row = cluster.admin("get", "svc", "api", "-n", "svc-defaults").stdout.splitlines()[1].split()
    assert row[:3] == ["api", "ClusterIP", spec["clusterIP"]]
    cluster.admin("label", "svc", "api", "-n", "svc-defaults", "tier=back")
    assert _jsonpath(cluster, "svc", "api", "svc-defaults", "{.spec.clusterIP}") == spec["clusterIP"]


def test_client_sent_generation_and_uid_are_ignored(cluster: Cluster, tmp_path: Path) -> None:
    cluster.admin("create", "namespace", "gen")
    manifest = tmp_path / "gen.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: g\n  namespace: gen\n  generation: 7\n"
        "  uid: 11111111-2222-3333-4444-555555555555\nspec:\n  selector: {matchLabels: {app: g}}\n"
        "  template:\n    metadata: {labels: {app: g}}\n    spec: {containers: [{name: c, image: g:1}]}\n"
    )
    applied = cluster.admin("apply", "-f", str(manifest))
    assert applied.stdout.strip() == "deployment.apps/g created"
    meta = json.loads(_jsonpath(cluster, "deploy", "g", "gen", "{.metadata}"))
    assert meta["generation"] == 1
    assert meta["uid"] != "11111111-2222-3333-4444-555555555555"
    cluster.admin("annotate", "deploy", "g", "-n", "gen", "note=x")
    assert _jsonpath(cluster, "deploy", "g", "gen", "{.metadata.generation}") == "1"
    cluster.admin("set", "image", "deploy/g", "c=g:2", "-n", "gen")
    assert _jsonpath(cluster, "deploy", "g", "gen", "{.metadata.generation}") == "2"


def test_python_client_sees_the_defaults(cluster: Cluster, tmp_path: Path) -> None:
    api = python_client(cluster.sim, tmp_path)
    try:
        apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "py-defaults"}})
        body = {
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
                },
            },
        }
        sts = apps.create_namespaced_stateful_set("py-defaults", body)
        assert (sts.spec.replicas, sts.spec.pod_management_policy) == (1, "OrderedReady")
        assert sts.spec.update_strategy.rolling_update.partition == 0
        ds_spec = {k: v for k, v in body["spec"].items() if k != "serviceName"}
        ds = apps.create_namespaced_daemon_set(
            "py-defaults", {"metadata": {"name": "agent"}, "spec": ds_spec}
        )
        assert ds.spec.update_strategy.rolling_update.max_unavailable == 1
        assert ds.spec.template.spec.termination_grace_period_seconds == 30
        svc = core.create_namespaced_service(
            "py-defaults", {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}}
        )
        assert (svc.spec.type, svc.spec.session_affinity, svc.spec.ip_families) == (
            "ClusterIP",
            "None",
            ["IPv4"],
        )
        assert svc.spec.ports[0].target_port == 5432
    finally:
        api.close()


# ------------------------------------------------------------------------------------ controllers

STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: db, image: "postgres:16"}}]}}
{claims}"""
CLAIMS = """\
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: gp2
      resources: {requests: {storage: 1Gi}}
"""
DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec: {{containers: [{{name: agent, image: "agent:1"}}]}}
"""


def _rows(cluster: Cluster, *args: str) -> list[list[str]]:
    return [line.split() for line in cluster.admin("get", *args).stdout.splitlines()[1:]]


def _apply(cluster: Cluster, tmp_path: Path, text: str) -> Any:
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    return cluster.admin("apply", "-f", str(path))


def test_a_deployment_gets_a_replica_set_and_scheduled_pods_and_rollout_status_ends(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "rollout")
    cluster.admin("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", "rollout")
    assert _rows(cluster, "deploy", "web", "-n", "rollout")[0][:4] == ["web", "2/2", "2", "2"]
    replica_sets = _rows(cluster, "rs", "-n", "rollout")
    assert len(replica_sets) == 1 and replica_sets[0][1:4] == ["2", "2", "2"]
    pods = _rows(cluster, "pods", "-n", "rollout", "-o", "wide")
    assert [p[2] for p in pods] == ["Running", "Running"]
    assert all(p[0].startswith(replica_sets[0][0] + "-") and p[6].endswith(".ec2.internal") for p in pods)
    status = cluster.admin("rollout", "status", "deployment/web", "-n", "rollout", "--timeout=10s")
    assert (status.returncode, status.stdout.strip()) == (0, 'deployment "web" successfully rolled out')
    observed = _jsonpath(cluster, "deploy", "web", "rollout", "{.status.observedGeneration}")
    assert observed == _jsonpath(cluster, "deploy", "web", "rollout", "{.metadata.generation}")
    cluster.admin("scale", "deployment", "web", "--replicas=3", "-n", "rollout")
    assert _rows(cluster, "deploy", "web", "-n", "rollout")[0][1] == "3/3"
    assert len(_rows(cluster, "pods", "-n", "rollout")) == 3
    cluster.admin("delete", "deployment", "web", "-n", "rollout")
    assert cluster.admin("get", "rs,pods", "-n", "rollout", "-o", "name").stdout == ""


def test_rollout_restart_history_and_undo(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "history")
    cluster.admin("create", "deployment", "api", "--image=api:1", "-n", "history")
    cluster.admin("set", "image", "deployment/api", "api=api:2", "-n", "history")
    restarted = cluster.admin("rollout", "restart", "deployment/api", "-n", "history")
    assert restarted.stdout.strip() == "deployment.apps/api restarted"
    status = cluster.admin("rollout", "status", "deployment/api", "-n", "history", "--timeout=10s")
    assert status.stdout.strip() == 'deployment "api" successfully rolled out'
    history = cluster.admin("rollout", "history", "deployment/api", "-n", "history").stdout.splitlines()
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["1", "2", "3"]
    undone = cluster.admin("rollout", "undo", "deployment/api", "--to-revision=1", "-n", "history")
    assert (undone.returncode, undone.stdout.strip()) == (0, "deployment.apps/api rolled back")
    image = _jsonpath(cluster, "deploy", "api", "history", "{.spec.template.spec.containers[0].image}")
    assert image == "api:1"
    history = cluster.admin("rollout", "history", "deployment/api", "-n", "history").stdout.splitlines()
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["2", "3", "4"]
    pods = _rows(cluster, "pods", "-n", "history", "-o", "jsonpath={.items[*].spec.containers[0].image}")
    assert pods == []  # jsonpath prints one line: no header row
    images = cluster.admin(
        "get", "pods", "-n", "history", "-o", "jsonpath={.items[*].spec.containers[0].image}"
    ).stdout.split()
    assert images == ["api:1"]


def test_statefulset_and_daemonset_pods(cluster: Cluster, tmp_path: Path) -> None:
    cluster.admin("create", "namespace", "sets")
    _apply(cluster, tmp_path, STATEFULSET.format(ns="sets", claims=""))
    status = cluster.admin("rollout", "status", "statefulset/db", "-n", "sets", "--timeout=10s")
    assert status.returncode == 0
    # partition defaults to 0, so kubectl takes its partitioned branch, as against a real server
    assert status.stdout.strip() == "partitioned roll out complete: 2 new pods have been updated..."
    _apply(cluster, tmp_path, DAEMONSET.format(ns="sets"))
    nodes = cluster.admin("get", "nodes", "-o", "name").stdout.split()
    ds = cluster.admin("rollout", "status", "daemonset/agent", "-n", "sets", "--timeout=10s")
    assert ds.stdout.strip() == 'daemon set "agent" successfully rolled out'
    pods = _rows(cluster, "pods", "-n", "sets", "-o", "wide")
    assert [p[0] for p in pods if p[0].startswith("db-")] == ["db-0", "db-1"]
    agents = sorted(p[6] for p in pods if p[0].startswith("agent-"))
    assert agents == sorted(n.split("/", 1)[1] for n in nodes)
    assert _rows(cluster, "ds", "agent", "-n", "sets")[0][1:4] == [str(len(nodes))] * 3


def test_ebs_claims_keep_statefulset_pods_pending_while_disconnected(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.admin("create", "namespace", "ebs")
    cluster.sim.disconnect()
    try:
        _apply(cluster, tmp_path, STATEFULSET.format(ns="ebs", claims=CLAIMS))
        pods = _rows(cluster, "pods", "-n", "ebs")
        assert [(p[0], p[2]) for p in pods] == [("db-0", "ContainerCreating")]  # OrderedReady: db-1 waits
        assert _rows(cluster, "pvc", "-n", "ebs")[0][:2] == ["data-db-0", "Pending"]
    finally:
        cluster.sim.connect()
    pods = _rows(cluster, "pods", "-n", "ebs")
    assert [(p[0], p[2]) for p in pods] == [("db-0", "Running"), ("db-1", "Running")]


def test_a_pod_no_node_fits_stays_pending_with_an_event(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "sched")
    cluster.admin(
        "run",
        "gpu",
        "--image=cuda:12",
        "-n",
        "sched",
        "--overrides",
        '{"spec": {"nodeSelector": {"accelerator": "h100"}}}',
    )
    assert _rows(cluster, "pods", "-n", "sched")[0][:3] == ["gpu", "0/1", "Pending"]
    events = cluster.admin("get", "events", "-n", "sched").stdout
    nodes = len(cluster.admin("get", "nodes", "-o", "name").stdout.split())
    assert "FailedScheduling" in events
    # The drain test's node is cordoned: the scheduler counts it apart, as kube-scheduler does.
    assert f"0/{nodes} nodes are available: " in events
    assert "node(s) didn't match Pod's node affinity/selector" in events


def test_get_events_and_describe_show_what_the_controllers_did(cluster: Cluster) -> None:
    cluster.admin("create", "namespace", "events")
    cluster.admin("create", "deployment", "web", "--image=nginx:1.27", "-n", "events")
    described = cluster.admin("describe", "deployment", "web", "-n", "events").stdout
    assert "Events: <none>" not in described.replace("  ", " ")
    rs = _rows(cluster, "rs", "-n", "events")[0][0]
    assert (
        f"ScalingReplicaSet  0s    deployment-controller  Scaled up replica set {rs} from 0 to 1"
        in " ".join(described.split("\n"))
        or f"Scaled up replica set {rs} from 0 to 1" in described
    )
    pod_name = _rows(cluster, "pods", "-n", "events")[0][0]
    pod_events = cluster.admin("describe", "pod", pod_name, "-n", "events").stdout
    assert "Successfully assigned events/" in pod_events
    assert 'Container image "nginx:1.27" already present on machine' in pod_events
    listed = cluster.admin("get", "events", "-n", "events").stdout
    assert f"replicaset/{rs}" in listed and f"Created pod: {pod_name}" in listed


def test_describe_node_shows_its_lease(cluster: Cluster) -> None:
    out = cluster.admin("describe", "node", "ip-10-0-1-10.ec2.internal")
    assert out.returncode == 0
    assert "Failed to get lease" not in out.stdout + out.stderr
    assert "HolderIdentity:  ip-10-0-1-10.ec2.internal" in out.stdout
    leases = _rows(cluster, "leases", "-n", "kube-node-lease")
    assert leases[0][:2] == ["ip-10-0-1-10.ec2.internal", "ip-10-0-1-10.ec2.internal"]


def test_a_namespace_goes_through_terminating(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough that the next kubectl calls see Terminating even on a loaded machine.
    monkeypatch.setattr(controllers, "NAMESPACE_FINISH_SECONDS", 8.0)
    cluster.admin("create", "namespace", "doomed")
    cluster.admin("create", "deployment", "web", "--image=nginx:1.27", "-n", "doomed")
    deleted = cluster.admin("delete", "namespace", "doomed", "--wait=false")
    assert deleted.stdout.strip() == 'namespace "doomed" deleted'
    assert _rows(cluster, "namespace", "doomed")[0][:2] == ["doomed", "Terminating"]
    refused = cluster.admin("create", "configmap", "late", "-n", "doomed", check=False)
    assert refused.returncode == 1
    assert "unable to create new content in namespace doomed because it is being terminated" in refused.stderr
    waited = cluster.admin("wait", "--for=delete", "namespace/doomed", "--timeout=60s", check=False)
    assert waited.returncode == 0
    gone = cluster.admin("get", "namespace", "doomed", check=False)
    assert gone.stderr.strip() == 'Error from server (NotFound): namespaces "doomed" not found'
    kept = cluster.admin("delete", "namespace", "default", check=False)
    assert kept.stderr.strip() == (
        'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted'
    )


def test_endpoints_follow_the_ready_pods(cluster: Cluster, tmp_path: Path) -> None:
    cluster.admin("create", "namespace", "endpoints")
    cluster.admin("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", "endpoints")
    cluster.admin("expose", "deployment", "web", "--port=80", "--target-port=8080", "-n", "endpoints")
    ips = sorted(
        cluster.admin(
            "get", "pods", "-n", "endpoints", "-o", "jsonpath={.items[*].status.podIP}"
        ).stdout.split()
    )
    row = _rows(cluster, "endpoints", "web", "-n", "endpoints")[0]
    assert sorted(row[1].split(",")) == [f"{ip}:8080" for ip in ips]
    cluster.admin("scale", "deployment", "web", "--replicas=1", "-n", "endpoints")
    assert len(_rows(cluster, "endpoints", "web", "-n", "endpoints")[0][1].split(",")) == 1
    slices = _rows(cluster, "endpointslices", "-n", "endpoints", "-l", "kubernetes.io/service-name=web")
    assert slices[0][1:3] == ["IPv4", "8080"] and len(slices[0][3].split(",")) == 1
    api = python_client(cluster.sim, tmp_path)
    try:
        endpoints = k8s.CoreV1Api(api).read_namespaced_endpoints("web", "endpoints")
        assert [a.target_ref.kind for a in endpoints.subsets[0].addresses] == ["Pod"]
        deployment = k8s.AppsV1Api(api).read_namespaced_deployment("web", "endpoints")
        assert (deployment.status.ready_replicas, deployment.status.observed_generation) == (
            1,
            deployment.metadata.generation,
        )
        lease = k8s.CoordinationV1Api(api).read_namespaced_lease(
            "ip-10-0-1-10.ec2.internal", "kube-node-lease"
        )
        assert lease.spec.holder_identity == "ip-10-0-1-10.ec2.internal"
    finally:
        api.close()


# ------------------------------------------------------------------------------------ CRDs

CRD_AND_RESOURCE = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: crds}
spec: {size: 3}
"""


def test_a_file_with_a_crd_and_its_resource_applies(cluster: Cluster, tmp_path: Path) -> None:
    cluster.admin("create", "namespace", "crds")
    path = tmp_path / "crd.yaml"
    path.write_text(CRD_AND_RESOURCE)
    # As against a real server: kubectl maps every document before applying any, so the first run
    # creates the CRD and asks for it to be installed first; the second run creates the resource.
    first = cluster.admin("apply", "-f", str(path), check=False)
    assert first.stdout.strip() == "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    assert "ensure CRDs are installed first" in first.stderr
    second = cluster.admin("apply", "-f", str(path))
    assert second.stdout.splitlines() == [
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com unchanged",
        "widget.example.com/w1 created",
    ]
    assert _rows(cluster, "wd", "-n", "crds")[0][:2] == ["w1", "3"]
    established = _jsonpath(
        cluster,
        "crd",
        "widgets.example.com",
        "default",
        '{.status.conditions[?(@.type=="Established")].status}',
    )
    assert established == "True"
    api = python_client(cluster.sim, tmp_path)
    try:
        widget = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "example.com", "v1", "crds", "widgets", "w1"
        )
        assert widget["spec"] == {"size": 3}
    finally:
        api.close()


# ------------------------------------------------------------------------------------ watches


def _watch(cluster: Cluster, *args: str, seconds: int = 6) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [cluster.admin.binary, "--kubeconfig", str(cluster.admin.kubeconfig), f"--request-timeout={seconds}s",
         "get", *args, "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for_line(process: subprocess.Popen[str], needle: str) -> list[str]:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never came; kubectl printed {seen}")


def test_get_w_stays_open_and_streams_changes(cluster: Cluster) -> None:
    """`kubectl get -w` prints the current rows, then each change as it happens, until its timeout."""
    cluster.admin("create", "namespace", "watched")
    cluster.admin("create", "configmap", "first", "-n", "watched")
    process = _watch(cluster, "configmaps", "-n", "watched")
    try:
        assert any(line.startswith("first ") for line in _wait_for_line(process, "first"))
        # A change made after the watch began arrives on the open stream.
        cluster.admin("create", "configmap", "second", "-n", "watched", "--from-literal=a=b")
        assert _wait_for_line(process, "second")[-1].split()[:2] == ["second", "1"]
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    # The watch ended at --request-timeout, not at once and not with a crash.
    assert "unexpected" not in err.lower() and "panic" not in err.lower(), err


def test_watch_through_the_python_client_sees_modified_and_deleted(cluster: Cluster, tmp_path: Path) -> None:
    from kubernetes import config as k8s_config
    from kubernetes import watch as k8s_watch

    cluster.admin("create", "namespace", "watched-py")
    api_client = k8s_config.new_client_from_config(str(cluster.admin.kubeconfig))
    core = k8s.CoreV1Api(api_client)
    listed = core.list_namespaced_config_map("watched-py")
    version = listed.metadata.resource_version
    cluster.admin("create", "configmap", "cm", "-n", "watched-py", "--from-literal=a=1")
    cluster.admin("patch", "configmap", "cm", "-n", "watched-py", "-p", '{"data":{"a":"2"}}')
    cluster.admin("delete", "configmap", "cm", "-n", "watched-py")
    events = []
    stream = k8s_watch.Watch().stream(
        core.list_namespaced_config_map, "watched-py", resource_version=version, timeout_seconds=5
    )
    for event in stream:
        events.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("a")))
        if event["type"] == "DELETED":
            break
    api_client.close()
    assert events == [("ADDED", "cm", "1"), ("MODIFIED", "cm", "2"), ("DELETED", "cm", "2")]


def test_watch_from_a_version_the_feed_no_longer_holds_is_expired() -> None:
    """A client resuming from a version older than what the server keeps gets 410 Expired (and
    re-lists); a version the feed holds streams only what came after it."""
    import datetime as dt

    from lifeline_simulator import watch
    from lifeline_simulator.errors import ApiError
    from lifeline_simulator.store import Store

    configmaps = BY_GROUP_PLURAL[("", "configmaps")]
    store = Store(lambda: dt.datetime.now(dt.UTC), feed_size=5)
    store.ensure_namespace("default")
    for i in range(10):
        store.create(
            configmaps, "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}}
        )
    with pytest.raises(ApiError) as expired:
        watch.open_watch(store, configmaps, "default", {"resourceVersion": "1"}, lambda o: o)
    assert (expired.value.code, expired.value.reason) == (410, "Expired")
    assert expired.value.message.startswith("too old resource version: 1 (")
    recent = str(store.revision - 2)
    query = {"resourceVersion": recent, "timeoutSeconds": "1"}
    stream = watch.open_watch(store, configmaps, "default", query, lambda o: o)
    names = [json.loads(chunk)["object"]["metadata"]["name"] for chunk in stream if chunk]
    assert names == ["c8", "c9"]


# ------------------------------------------------------------------------------------ jobs


def test_a_job_runs_its_pods_to_completion(cluster: Cluster) -> None:
    """`kubectl create job` then `wait --for=condition=complete` ends; the pods read Completed."""
    cluster.admin("create", "namespace", "batch-work")
    cluster.admin("create", "job", "hello", "-n", "batch-work", "--image=busybox:1.36", "--", "echo", "hi")
    waited = cluster.admin(
        "wait", "--for=condition=complete", "job/hello", "-n", "batch-work", "--timeout=20s"
    )
    assert waited.stdout.strip() == "job.batch/hello condition met"
    row = cluster.admin("get", "job", "hello", "-n", "batch-work", "--no-headers").stdout.split()
    assert "1/1" in row
    pods = cluster.admin("get", "pods", "-n", "batch-work", "-l", "job-name=hello", "--no-headers").stdout
    [line] = pods.splitlines()
    assert line.split()[2] == "Completed", line
    events = cluster.admin(
        "get", "events", "-n", "batch-work", "--field-selector", "involvedObject.name=hello"
    )
    assert "Created pod: hello-" in events.stdout and "Job completed" in events.stdout
    # Deleting the Job takes its pods with it (background propagation).
    cluster.admin("delete", "job", "hello", "-n", "batch-work")
    assert cluster.admin("get", "pods", "-n", "batch-work", "--no-headers").stdout.strip() == ""


def test_a_parallel_job_keeps_to_its_parallelism(tmp_path: Path, cluster: Cluster) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: fan-out, namespace: default}\n"
        "spec:\n  completions: 5\n  parallelism: 2\n  template:\n    spec:\n"
        "      restartPolicy: Never\n      containers: [{name: w, image: busybox:1.36}]\n"
    )
    cluster.admin("apply", "-f", str(manifest))
    cluster.admin("wait", "--for=condition=complete", "job/fan-out", "--timeout=20s")
    job = json.loads(cluster.admin("get", "job", "fan-out", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 5 and "active" not in job["status"]
    created = cluster.admin(
        "get", "events", "--field-selector", "involvedObject.name=fan-out,reason=SuccessfulCreate"
    )
    assert created.stdout.count("Created pod: fan-out-") == 5


def test_a_job_from_a_cronjob_runs(cluster: Cluster) -> None:
    """The CronJob controller does not run, but starting its job by hand does, as operators do."""
    cluster.admin("create", "cronjob", "nightly", "--image=busybox:1.36", "--schedule=0 3 * * *")
    cluster.admin("create", "job", "nightly-now", "--from=cronjob/nightly")
    cluster.admin("wait", "--for=condition=complete", "job/nightly-now", "--timeout=20s")
    assert cluster.admin("get", "jobs", "--no-headers").stdout.count("nightly-now") == 1
