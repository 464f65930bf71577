"""Builders for readiness fixtures: a cluster that passes every manifest check, and one mutation per
check that makes it fail. The same objects feed `lifeline check` and the simulated cluster."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

LOCAL_REGISTRY = "registry.local:5000"
ECR_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/shop/api:2.0"
Obj = dict[str, Any]


def node(name: str, *, cpu: str = "1930m", memory: str = "7Gi", images: list[str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"node.kubernetes.io/instance-type": "m5.large", "kubernetes.io/hostname": name},
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "29"},
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
            "images": [{"names": [image], "sizeBytes": 1000} for image in images or []],
        },
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def container(name: str, image: str, cpu: str = "100m", memory: str = "128Mi", **extra: Any) -> Obj:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
        **extra,
    }


TUNED_TOLERATION = [
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 60,
    }
]


def workload(
    kind: str,
    name: str,
    ns: str,
    containers: list[Obj],
    *,
    replicas: int = 1,
    labels: dict[str, str] | None = None,
    tolerations: list[Obj] | None = None,
    service_account: str | None = None,
    **spec_extra: Any,
) -> Obj:
    labels = labels or {"app": name}
    pod_spec: Obj = {
        "containers": containers,
        "tolerations": TUNED_TOLERATION if tolerations is None else tolerations,
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    spec: Obj = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        **spec_extra,
    }
    if kind in ("Deployment", "StatefulSet"):
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def local(image: str) -> str:
    return f"{LOCAL_REGISTRY}/{image}"


def ready_cluster() -> list[Obj]:
    """A cluster ready for a disconnect as far as manifests can show."""
    nodes = [node(f"node-{i}") for i in range(1, 4)]
    aws_node = workload(
        "DaemonSet",
        "aws-node",
        "kube-system",
        [
            container(
                "aws-node",
                local("amazon-k8s-cni:v1.18.0"),
                cpu="25m",
                env=[{"name": "WARM_IP_TARGET", "value": "5"}, {"name": "MINIMUM_IP_TARGET", "value": "15"}],
            )
        ],
        labels={"k8s-app": "aws-node"},
    )
    return [
        *nodes,
        namespace("shop"),
        namespace("monitoring"),
        aws_node,
        workload(
            "Deployment",
            "web",
            "shop",
            [container("web", local("shop/web:1.2"), "250m", "256Mi")],
            replicas=3,
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "annotations": {"alb.ingress.kubernetes.io/target-type": "instance"},
            },
            "spec": {
                "ingressClassName": "alb",
                "rules": [
                    {
                        "host": "shop.example.internal",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 4,
                "maxReplicas": 8,
            },
        },
        workload(
            "Deployment",
            "prometheus",
            "monitoring",
            [container("prometheus", local("prom/prometheus:v2.54"))],
        ),
        workload(
            "Deployment", "grafana", "monitoring", [container("grafana", local("grafana/grafana:11.2"))]
        ),
        workload(
            "DaemonSet", "fluent-bit", "monitoring", [container("fluent-bit", local("fluent/fluent-bit:3.1"))]
        ),
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "gp2",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "ebs.csi.aws.com",
            "parameters": {"type": "gp2"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "lifeline-breakglass"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eks-breakglass"}
            ],
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}},
    ]


def _find(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _masters(objects: list[Obj]) -> None:
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "admin-masters"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
            ],
        }
    )


def _no_spare(objects: list[Obj]) -> None:
    objects.append(
        workload("Deployment", "batch", "shop", [container("batch", local("shop/batch:1"), "1")], replicas=4)
    )


def _ecr(objects: list[Obj]) -> None:
    objects.append(workload("Deployment", "api", "shop", [container("api", ECR_IMAGE)], replicas=2))


def _ebs(objects: list[Obj]) -> None:
    objects.append(
        workload(
            "StatefulSet",
            "db",
            "shop",
            [container("db", local("postgres:16"))],
            volumeClaimTemplates=[
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        )
    )


def _snapshots(objects: list[Obj]) -> None:
    objects.append(
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": "ebs-snapshots"},
            "driver": "ebs.csi.aws.com",
            "deletionPolicy": "Delete",
        }
    )


def _acm(objects: list[Obj]) -> None:
    ingress = _find(objects, "Ingress", "web")
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] = (
        "arn:aws:acm:us-west-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
    )
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTPS":443}]'


def _ip_targets(objects: list[Obj]) -> None:
    _find(objects, "Ingress", "web")["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = (
        "ip"
    )
    _find(objects, "Namespace", "shop")["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] = (
        "enabled"
    )


def _cold_cni(objects: list[Obj]) -> None:
    env = _find(objects, "DaemonSet", "aws-node")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [{"name": "WARM_IP_TARGET", "value": "1"}]
    for index in range(10):
        objects.append(
            pod(
                f"web-7f9c-{index}", "shop", "node-1", local("shop/web:1.2"), owner=("ReplicaSet", "web-7f9c")
            )
        )


def _no_observability(objects: list[Obj]) -> None:
    objects[:] = [o for o in objects if o["metadata"]["name"] not in ("prometheus", "grafana", "fluent-bit")]


def _irsa(objects: list[Obj]) -> None:
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "uploader",
                "namespace": "shop",
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/uploader"},
            },
        }
    )
    objects.append(
        workload(
            "Deployment",
            "uploader",
            "shop",
            [container("up", local("shop/up:1"))],
            service_account="uploader",
        )
    )


def _default_toleration(objects: list[Obj]) -> None:
    objects.append(
        workload("Deployment", "cart", "shop", [container("cart", local("shop/cart:1"))], tolerations=[])
    )


def pod(
    name: str,
    ns: str,
    node_name: str | None,
    image: str,
    *,
    owner: tuple[str, str] | None = None,
    cpu: str = "100m",
    memory: str = "128Mi",
    labels: dict[str, str] | None = None,
) -> Obj:
    metadata: Obj = {"name": name, "namespace": ns, "labels": labels or {"app": name.split("-")[0]}}
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": f"uid-{owner[1]}",
                "controller": True,
            }
        ]
        metadata["labels"]["pod-template-hash"] = owner[1].rsplit("-", 1)[-1]
    spec: Obj = {"containers": [container("main", image, cpu, memory)], "tolerations": TUNED_TOLERATION}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Running"},
    }


# check_id -> (mutation, the status it must produce)
FAILING: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "system-masters-binding": (_masters, "fail"),
    "spare-capacity": (_no_spare, "fail"),
    "image-sources": (_ecr, "fail"),
    "ebs-workloads": (_ebs, "fail"),
    "ebs-snapshots": (_snapshots, "warn"),
    "alb-acm-certificates": (_acm, "warn"),
    "lb-controller-new-pods": (_ip_targets, "fail"),
    "vpc-cni-warm-ips": (_cold_cni, "fail"),
    "local-observability": (_no_observability, "fail"),
    "iam-dependent-workloads": (_irsa, "fail"),
    "unreachable-toleration": (_default_toleration, "warn"),
}

MANIFEST_CHECKS = tuple(FAILING)
# Checks that need AWS, Lifeline's records or a person: `unknown` from a manifest dump.
UNKNOWN_FROM_MANIFESTS = (
    "breakglass-credential",
    "fallback-identity",
    "endpoint-dns",
    "connected-status-alarm",
    "cluster-health",
    "control-plane-capacity",
)


def failing_cluster(check_id: str) -> list[Obj]:
    objects = copy.deepcopy(ready_cluster())
    FAILING[check_id][0](objects)
    return objects
