"""Shapes seen in real-world inputs (helm/kustomize output, cluster dumps, AWS's guide), each with
the finding and status it must produce; written for this suite, not copied from anyone's files.

Plus one rule over every fixture here and in factories: a finding whose summary starts with a
count counts the distinct top-level objects in its evidence, and a failing or warning finding with
evidence always starts with that count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from app.services.readiness.catalogue import evaluate
from app.services.readiness.model import CheckContext, Finding, Status
from app.services.readiness.objects import workload_groups
from app.services.readiness.snapshot import snapshot_from_objects
from app.services.readiness.specs import SPECS
from tests.factories import (
    FAILING,
    LOCAL_REGISTRY,
    TUNED_TOLERATION,
    Obj,
    certificate_request,
    container,
    failing_cluster,
    local,
    pod,
    ready_cluster,
    workload,
)

CONTEXT = CheckContext(local_registries=(LOCAL_REGISTRY,))


def storage_class(name: str, provisioner: str, *, default: bool = False) -> Obj:
    notes = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": notes},
        "provisioner": provisioner,
    }


def claim(name: str, ns: str, cls: str | None = None, *, legacy: str | None = None) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    if cls is not None:
        spec["storageClassName"] = cls
    meta: Obj = {"name": name, "namespace": ns}
    if legacy is not None:
        meta["annotations"] = {"volume.beta.kubernetes.io/storage-class": legacy}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def statefulset(name: str, cls: str | None, ns: str | None = "shop") -> Obj:
    template: Obj = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    if cls is not None:
        template["spec"]["storageClassName"] = cls
    obj = workload(
        "StatefulSet", name, ns or "x", [container(name, local(f"{name}:1"))], volumeClaimTemplates=[template]
    )
    if ns is None:
        del obj["metadata"]["namespace"]
    return obj


def claim_user(kind: str, name: str, claim_name: str) -> Obj:
    return workload(
        kind,
        name,
        "shop",
        [container(name, local(f"{name}:1"))],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
    )


def bare_pod_with_claim(claim_name: str) -> Obj:
    obj = pod("loader", "shop", None, local("loader:1"))
    obj["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]
    return obj


def binding(name: str, subjects: list[tuple[str, str]]) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": kind, "name": who} for kind, who in subjects],
    }


def toleration(seconds: int) -> list[Obj]:
    return [{**TUNED_TOLERATION[0], "tolerationSeconds": seconds}]


def log_agent(config: str, image: str = "fluent/fluent-bit:3.1", name: str = "fluent-bit") -> list[Obj]:
    return [
        workload(
            "DaemonSet",
            name,
            "logging",
            [container(name, local(image))],
            volumes=[{"name": "config", "configMap": {"name": f"{name}-config"}}],
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "namespace": "logging"},
            "data": {"config": config},
        },
    ]


def prometheus() -> Obj:
    return workload(
        "Deployment", "prometheus-server", "monitoring", [container("p", local("prom/prometheus:v2"))]
    )


def exporters() -> list[Obj]:
    return [
        workload(
            "DaemonSet", "node-exporter", "monitoring", [container("n", local("prom/node-exporter:v1"))]
        ),
        workload(
            "Deployment", "kube-state-metrics", "monitoring", [container("k", local("kube-state-metrics:v2"))]
        ),
    ]


FLUENT_BIT_CLOUDWATCH = """
[INPUT]
    Name tail
    Path /var/log/containers/*.log
[OUTPUT]
    Name cloudwatch_logs
    Match *
    region us-west-2
    log_group_name /eks/app
"""
FLUENT_BIT_YAML_LOKI = """
pipeline:
  inputs:
    - name: tail
      path: /var/log/containers/*.log
  outputs:
    - name: loki
      match: "*"
      host: loki.logging.svc
"""
FLUENTD_OPENSEARCH_SERVICE = """
<match **>
  @type opensearch
  host search-logs-abc.us-west-2.es.amazonaws.com
</match>
"""


def service(name: str, **spec: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "annotations": spec.pop("annotations", {})},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec},
    }


def deployment_with_replicaset(name: str, ns: str = "shop") -> list[Obj]:
    """A Deployment and the ReplicaSet it owns, as a cluster dump lists them."""
    deploy = workload(
        "Deployment", name, ns, [container(name, "123456789012.dkr.ecr.us-west-2.amazonaws.com/x:1")]
    )
    rs = workload(
        "ReplicaSet",
        f"{name}-6d4b",
        ns,
        [container(name, "123456789012.dkr.ecr.us-west-2.amazonaws.com/x:1")],
    )
    rs["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": name, "controller": True}]
    return [deploy, rs]


def replication_controller(name: str) -> Obj:
    obj = workload("ReplicaSet", name, "shop", [container(name, "gcr.io/google-samples/x:1")], tolerations=[])
    obj["kind"] = "ReplicationController"
    obj["apiVersion"] = "v1"
    obj["spec"]["selector"] = {"app": name}
    return obj


def cronjob(name: str) -> list[Obj]:
    spec = workload("Job", name, "shop", [container(name, "docker.io/busybox:1.36")])["spec"]
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": spec}},
    }
    job = workload("Job", f"{name}-2901", "shop", [container(name, "docker.io/busybox:1.36")])
    job["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": name, "controller": True}]
    return [cron, job]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], list[Obj]]
    check_id: str
    status: Status
    says: str = ""  # a phrase the summary or evidence must contain


def _on_ready(*extra: Obj, drop: tuple[str, ...] = ()) -> Callable[[], list[Obj]]:
    def build() -> list[Obj]:
        objects = [o for o in ready_cluster() if o["metadata"]["name"] not in drop]
        return objects + [dict(o) for o in extra]

    return build


def _only(*objects: Obj) -> Callable[[], list[Obj]]:
    return lambda: [dict(o) for o in objects]


CASES = [
    # ebs-workloads: helm/kustomize output has no StorageClasses; a local cluster's default is EBS.
    Case(
        "sts-class-not-in-dump",
        _only(statefulset("db", "fast")),
        "ebs-workloads",
        Status.fail,
        "not in the dump",
    ),
    Case(
        "sts-no-class-no-default",
        _only(statefulset("db", None)),
        "ebs-workloads",
        Status.fail,
        "default is EBS",
    ),
    Case(
        "sts-on-local-class",
        _only(storage_class("local-nvme", "kubernetes.io/no-provisioner"), statefulset("db", "local-nvme")),
        "ebs-workloads",
        Status.passed,
    ),
    Case(
        "inline-aws-ebs-volume",
        _only(
            workload(
                "Deployment",
                "legacy",
                "shop",
                [container("l", local("l:1"))],
                volumes=[
                    {"name": "disk", "awsElasticBlockStore": {"volumeID": "vol-0abc", "fsType": "ext4"}}
                ],
            )
        ),
        "ebs-workloads",
        Status.fail,
        "awsElasticBlockStore",
    ),
    Case(
        "bare-pod-on-ebs-claim",
        _only(
            storage_class("gp2", "kubernetes.io/aws-ebs"),
            claim("data", "shop", "gp2"),
            bare_pod_with_claim("data"),
        ),
        "ebs-workloads",
        Status.fail,
        "PVC data",
    ),
    Case(
        "deployment-on-ebs-claim",
        _only(claim("data", "shop", "gp2"), claim_user("Deployment", "api", "data")),
        "ebs-workloads",
        Status.fail,
        "PVC data",
    ),
    Case(
        "legacy-annotation-non-ebs-class",
        _only(
            storage_class("gp2", "ebs.csi.aws.com", default=True),
            storage_class("nfs", "nfs.csi.k8s.io"),
            claim("share", "shop", legacy="nfs"),
            claim_user("Deployment", "api", "share"),
        ),
        "ebs-workloads",
        Status.passed,
    ),
    Case(
        "legacy-annotation-ebs-class",
        _only(
            storage_class("nfs", "nfs.csi.k8s.io", default=True),
            storage_class("gp2", "kubernetes.io/aws-ebs"),
            claim("data", "shop", legacy="gp2"),
            claim_user("Deployment", "api", "data"),
        ),
        "ebs-workloads",
        Status.fail,
        "class gp2 provisions EBS",
    ),
    # system-masters-binding: the binding AWS's guide creates is not the risk.
    Case(
        "guide-admin-binding",
        _only(binding("admin", [("User", "admin"), ("Group", "system:masters")])),
        "system-masters-binding",
        Status.passed,
        "redundant",
    ),
    Case(
        "issued-masters-certificate",
        _only(certificate_request("ops", "ops", "system:masters")),
        "system-masters-binding",
        Status.fail,
        "O=system:masters",
    ),
    Case(
        "pending-masters-request",
        _only(
            certificate_request("ops", "ops", "system:masters", issued=False), binding("b", [("User", "x")])
        ),
        "system-masters-binding",
        Status.passed,
    ),
    Case(
        "guide-admin-certificate",
        _only(certificate_request("admin", "admin", None), binding("admin", [("User", "admin")])),
        "system-masters-binding",
        Status.passed,
    ),
    Case(
        "no-bindings-in-dump",
        _only(statefulset("db", "x")),
        "system-masters-binding",
        Status.unknown,
        "no RBAC",
    ),
    # unreachable-toleration
    Case(
        "explicit-300",
        _only(
            workload("Deployment", "api", "shop", [container("a", local("a:1"))], tolerations=toleration(300))
        ),
        "unreachable-toleration",
        Status.passed,
    ),
    Case(
        "nothing-set",
        _only(workload("Deployment", "api", "shop", [container("a", local("a:1"))], tolerations=[])),
        "unreachable-toleration",
        Status.warn,
        "default",
    ),
    Case(
        "daemonsets-only",
        _only(workload("DaemonSet", "agent", "kube-system", [container("a", local("a:1"))], tolerations=[])),
        "unreachable-toleration",
        Status.passed,
        "DaemonSets",
    ),
    # local-observability: outputs, not names.
    Case(
        "fluent-bit-to-cloudwatch",
        _only(prometheus(), *log_agent(FLUENT_BIT_CLOUDWATCH, "aws-for-fluent-bit:2.32")),
        "local-observability",
        Status.warn,
        "cloudwatch_logs",
    ),
    Case(
        "fluentd-to-opensearch-service",
        _only(prometheus(), *log_agent(FLUENTD_OPENSEARCH_SERVICE, "fluentd:v1.16", "fluentd")),
        "local-observability",
        Status.warn,
        "ships only to",
    ),
    Case(
        "fluent-bit-yaml-to-loki",
        _only(prometheus(), *log_agent(FLUENT_BIT_YAML_LOKI)),
        "local-observability",
        Status.passed,
        "ships to loki",
    ),
    Case(
        "exporters-without-server",
        _only(*exporters(), *log_agent(FLUENT_BIT_YAML_LOKI)),
        "local-observability",
        Status.warn,
        "exporter only",
    ),
    Case(
        "prometheus-operator-resource",
        _only(
            *exporters(),
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "Prometheus",
                "metadata": {"name": "k8s", "namespace": "monitoring"},
            },
            *log_agent(FLUENT_BIT_YAML_LOKI),
        ),
        "local-observability",
        Status.passed,
    ),
    Case(
        "nothing-local",
        _only(*exporters(), *log_agent(FLUENT_BIT_CLOUDWATCH)),
        "local-observability",
        Status.fail,
    ),
    # load balancers: only ALB works on Outposts.
    Case(
        "lb-service-plain",
        _on_ready(service("plain", type="LoadBalancer")),
        "lb-controller-new-pods",
        Status.warn,
        "Classic",
    ),
    Case(
        "lb-service-nlb-class",
        _on_ready(service("nlb", type="LoadBalancer", loadBalancerClass="service.k8s.aws/nlb")),
        "lb-controller-new-pods",
        Status.warn,
        "Network Load Balancer",
    ),
    Case(
        "clusterip-service",
        _on_ready(service("internal", type="ClusterIP")),
        "lb-controller-new-pods",
        Status.passed,
    ),
    # ReplicationControllers are workloads.
    Case(
        "replication-controller",
        _only(replication_controller("redis-master")),
        "unreachable-toleration",
        Status.warn,
        "ReplicationController",
    ),
    Case(
        "replication-controller-image",
        _only(replication_controller("redis-master")),
        "image-sources",
        Status.warn,
        "ReplicationController",
    ),
    # counts: owned objects once, as their owner.
    Case(
        "deployment-and-its-replicaset",
        lambda: deployment_with_replicaset("api"),
        "image-sources",
        Status.warn,
        "1 workload",
    ),
    Case("cronjob-and-its-job", lambda: cronjob("report"), "image-sources", Status.warn, "1 workload"),
    Case(
        "namespace-omitted",
        _only(statefulset("cassandra", None, ns=None)),
        "ebs-workloads",
        Status.fail,
        "StatefulSet/default/cassandra",
    ),
]


def _text(item: Finding) -> str:
    return " ".join([item.summary, *(f"{e.ref} {e.detail}" for e in item.evidence)])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_world_shape(case: Case) -> None:
    findings = {f.check_id: f for f in evaluate(snapshot_from_objects(case.build()), CONTEXT)}
    got = findings[case.check_id]
    assert got.status == case.status, (got.summary, [e.detail for e in got.evidence])
    assert case.says in _text(got), _text(got)


def test_owned_objects_are_one_workload_each() -> None:
    objects = deployment_with_replicaset("api") + cronjob("report")
    groups = workload_groups(snapshot_from_objects(objects))
    assert sorted((g.owner_kind, g.owner_name) for g in groups) == [
        ("CronJob", "report"),
        ("Deployment", "api"),
    ]


def test_failing_titles_name_the_problem() -> None:
    findings = evaluate(snapshot_from_objects(failing_cluster("ebs-workloads")), CONTEXT)
    ebs = next(f for f in findings if f.check_id == "ebs-workloads")
    assert ebs.status == Status.fail
    assert ebs.title == "Workloads need new EBS volumes to start or scale" != SPECS["ebs-workloads"].title
    passing = next(f for f in findings if f.check_id == "image-sources")
    assert passing.status == Status.passed and passing.title == SPECS["image-sources"].title


def test_fix_texts_have_no_markdown() -> None:
    for spec in SPECS.values():
        assert "`" not in spec.remediation + spec.catches + spec.title, spec.check_id


def test_pod_failover_is_cited_from_the_instance_store_page() -> None:
    assert "instance-store" in SPECS["unreachable-toleration"].guide_section


_COUNT = re.compile(r"^(\d+) ")
ALL_FIXTURES = (
    [pytest.param(c.build, id=c.name) for c in CASES]
    + [pytest.param(ready_cluster, id="ready")]
    + [pytest.param(lambda check_id=k: failing_cluster(check_id), id=f"failing-{k}") for k in FAILING]
)


@pytest.mark.parametrize("build", ALL_FIXTURES)
def test_summary_counts_are_distinct_objects_in_evidence(build: Callable[[], list[Obj]]) -> None:
    for item in evaluate(snapshot_from_objects(build()), CONTEXT):
        match = _COUNT.match(item.summary)
        if item.status in (Status.fail, Status.warn) and item.evidence:
            assert match, (item.check_id, item.summary)
        if match:
            assert int(match.group(1)) == len({e.ref for e in item.evidence}), (item.check_id, item.summary)
