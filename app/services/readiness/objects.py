"""Helpers over Kubernetes objects as plain dicts: names, labels, workloads and their pod templates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from app.services.readiness.model import ClusterSnapshot, Evidence
from app.services.readiness.pods import PodGroup, template_facts

WORKLOAD_KINDS = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)
# Kinds without a namespace; every other kind without `metadata.namespace` lives in "default", so
# evidence spells `StatefulSet/default/db` whether the manifest wrote the namespace or not.
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "VolumeSnapshotClass",
        "VolumeSnapshotContent",
    }
)
CONTROL_PLANE_TAINT = "node-role.eks-local.amazonaws.com/control-plane"


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str | None:
    """The object's namespace; "default" for a namespaced kind that names none, None when cluster-scoped."""
    kind = str(obj.get("kind", ""))
    if kind in CLUSTER_SCOPED:
        return None
    value = meta(obj).get("namespace")
    if value:
        return str(value)
    return "default" if kind else None


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, Mapping) else {}


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def evidence(obj: Mapping[str, Any], detail: str = "", kind: str | None = None) -> Evidence:
    return Evidence(
        kind=kind or str(obj.get("kind", "")), name=name_of(obj), namespace=namespace_of(obj), detail=detail
    )


def distinct_objects(items: Iterable[Evidence]) -> int:
    """How many distinct objects (`Kind/namespace/name`) a list of evidence names."""
    return len({item.ref for item in items})


def group_evidence(group: PodGroup, detail: str) -> Evidence:
    pods = f" ({group.count} pod{'s' if group.count != 1 else ''})" if group.owner_kind != "Pod" else ""
    return Evidence(
        kind=group.owner_kind, name=group.owner_name, namespace=group.namespace, detail=detail + pods
    )


def controller_of(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's controlling owner, when it names one."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller", True) and ref.get("kind") and ref.get("name"):
            return str(ref["kind"]), str(ref["name"])
    return None


def top_level_owners(snapshot: ClusterSnapshot) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(namespace, kind, name) of each owned workload -> the top-level workload that owns it.

    Only owners present in the snapshot count: a ReplicaSet whose Deployment was not collected is
    reported as itself. Chains (CronJob -> Job -> Pod) resolve to the top.
    """
    present = {
        (namespace_of(w) or "default", kind, name_of(w)): w
        for kind in WORKLOAD_KINDS
        for w in snapshot.of_kind(kind)
    }
    direct: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    for key, workload in present.items():
        owner = controller_of(workload)
        if owner is not None and (key[0], *owner) in present:
            direct[key] = (key[0], *owner)
    result: dict[tuple[str, str, str], tuple[str, str]] = {}
    for key in direct:
        top = key
        for _ in range(5):  # owner chains are short; a loop in bad input must not hang
            if top not in direct:
                break
            top = direct[top]
        result[key] = (top[1], top[2])
    return result


def pod_template(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = spec_of(workload)
    if workload.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template if isinstance(template, Mapping) else {}


def replicas_of(workload: Mapping[str, Any]) -> int:
    kind = workload.get("kind")
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        value = spec_of(workload).get("replicas", 1)
        return int(value) if isinstance(value, int) else 1
    return 1


def workload_groups(snapshot: ClusterSnapshot) -> tuple[PodGroup, ...]:
    """One group per workload (from its template) plus pods no collected workload owns.

    For a live cluster the pod digest supplies where pods run and how many; for a manifest dump
    with no pods the template and `replicas` stand in.
    """
    owners = top_level_owners(snapshot)
    pod_groups: dict[tuple[str, str, str], list[PodGroup]] = {}
    for group in snapshot.pods.groups:
        key = (group.namespace, group.owner_kind, group.owner_name)
        top = owners.get(key)
        if top is not None:
            group = replace(group, owner_kind=top[0], owner_name=top[1])
            key = (group.namespace, *top)
        pod_groups.setdefault(key, []).append(group)
    result: list[PodGroup] = []
    seen: set[tuple[str, str, str]] = set()
    for kind in WORKLOAD_KINDS:
        for workload in snapshot.of_kind(kind):
            key = (namespace_of(workload) or "default", kind, name_of(workload))
            if key in owners:
                continue  # counted once, as its top-level owner
            seen.add(key)
            group = template_facts(key[0], (kind, key[2]), key[2], pod_template(workload))
            running = pod_groups.get(key, [])
            nodes = frozenset().union(*(g.nodes for g in running)) if running else frozenset()
            count = sum(g.count for g in running) if running else replicas_of(workload)
            result.append(replace(group, count=count, nodes=nodes))
    for key, groups in pod_groups.items():
        if key not in seen:
            result.extend(groups)
    return tuple(result)


def node_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(spec_of(node).get("taints") or [])


def is_control_plane(node: Mapping[str, Any]) -> bool:
    return any(taint.get("key") == CONTROL_PLANE_TAINT for taint in node_taints(node))


def node_ready(node: Mapping[str, Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def schedulable_nodes(snapshot: ClusterSnapshot) -> list[Mapping[str, Any]]:
    """Worker nodes that can take pods: not control plane, not cordoned."""
    return [
        node
        for node in snapshot.of_kind("Node")
        if not is_control_plane(node) and not spec_of(node).get("unschedulable")
    ]


def instance_type_of(node: Mapping[str, Any]) -> str | None:
    labels = labels_of(node)
    value = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type")
    return str(value) if value else None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Service-style selector (plain map) or a LabelSelector's matchLabels against labels."""
    match_labels = selector.get("matchLabels", selector) if "matchLabels" in selector else selector
    if not match_labels:
        return False
    return all(labels.get(str(k)) == str(v) for k, v in match_labels.items())
