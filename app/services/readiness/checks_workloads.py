"""Checks on workloads: image sources, STS-dependent identities, eviction tolerations, observability."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    annotations_of,
    distinct_objects,
    group_evidence,
    labels_of,
    name_of,
    namespace_of,
    schedulable_nodes,
    workload_groups,
)
from app.services.readiness.pods import PodGroup
from app.services.readiness.specs import finding

ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def image_registry(image: str) -> str:
    """The registry host of an image reference (docker.io when none is written)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def normalize_image(image: str) -> str:
    """`nginx` -> `docker.io/library/nginx:latest`, so node image lists and specs compare equal."""
    registry = image_registry(image)
    path = image[len(registry) + 1 :] if image.startswith(registry + "/") else image
    if registry == "docker.io" and "/" not in path:
        path = "library/" + path
    if "@" not in path and ":" not in path.rsplit("/", 1)[-1]:
        path += ":latest"
    return f"{registry}/{path}"


def is_local(image: str, local_registries: Iterable[str]) -> bool:
    normalized = normalize_image(image)
    for entry in local_registries:
        entry = entry.strip().rstrip("/")
        if entry and (
            normalized == entry or normalized.startswith(entry + "/") or image_registry(image) == entry
        ):
            return True
    return False


def _cached_images(node: Mapping[str, Any]) -> set[str] | None:
    images = (node.get("status") or {}).get("images")
    if images is None:
        return None
    return {normalize_image(str(name)) for entry in images for name in entry.get("names") or []}


def _candidate_nodes(group: PodGroup, nodes: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    selector = dict(group.node_selector)
    return [node for node in nodes if all(labels_of(node).get(k) == v for k, v in selector.items())]


def check_image_sources(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    groups = workload_groups(snapshot)
    if not groups:
        return [finding("image-sources", Status.unknown, "No workloads or pods to inspect.")]
    nodes = schedulable_nodes(snapshot)
    cache = {name_of(node): _cached_images(node) for node in nodes}
    failing: list[Evidence] = []
    warning: list[Evidence] = []
    for group in groups:
        candidates = _candidate_nodes(group, nodes)
        for container in group.containers:
            image = container.image
            local = is_local(image, context.local_registries)
            if container.pull_policy == "Always":
                target = warning if local else failing
                target.append(
                    group_evidence(
                        group, f"{container.name}: {image} has imagePullPolicy Always (every restart pulls)"
                    )
                )
                continue
            if local:
                continue
            source = "ECR in the Region" if ECR_HOST.match(image_registry(image)) else "a remote registry"
            known = [name_of(n) for n in candidates if cache.get(name_of(n)) is not None]
            missing = [n for n in known if normalize_image(image) not in (cache[n] or set())]
            if missing:
                failing.append(
                    group_evidence(
                        group,
                        f"{container.name}: {image} from {source} is not "
                        f"cached on {', '.join(sorted(missing))}",
                    )
                )
            elif not known:
                warning.append(
                    group_evidence(
                        group, f"{container.name}: {image} from {source}; node image caches unknown"
                    )
                )
    shift = context.horizon_shift
    if failing:
        return [
            finding(
                "image-sources",
                Status.fail,
                f"{distinct_objects(failing + warning)} workload(s) pull images that may be unreachable; "
                f"{distinct_objects(failing)} of them could not be pulled during a disconnect.",
                failing + warning,
                horizon_shift=shift,
            )
        ]
    if warning:
        return [
            finding(
                "image-sources",
                Status.warn,
                f"{distinct_objects(warning)} workload(s) depend on a registry or cache that may be "
                "unreachable.",
                warning,
                horizon_shift=shift,
            )
        ]
    return [
        finding(
            "image-sources",
            Status.passed,
            "Every image comes from a local registry or is cached on each node that could run it.",
        )
    ]


def check_iam_dependent_workloads(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    groups = workload_groups(snapshot)
    accounts = snapshot.of_kind("ServiceAccount")
    if not groups and not accounts:
        return [
            finding("iam-dependent-workloads", Status.unknown, "No workloads or ServiceAccounts to inspect.")
        ]
    irsa_accounts = {
        (namespace_of(sa) or "default", name_of(sa)): str(annotations_of(sa)[IRSA_ANNOTATION])
        for sa in accounts
        if annotations_of(sa).get(IRSA_ANNOTATION)
    }
    hits: list[Evidence] = []
    used: set[tuple[str, str]] = set()
    for group in groups:
        role = irsa_accounts.get((group.namespace, group.service_account))
        if role or group.iam_mode:
            used.add((group.namespace, group.service_account))
            how = (
                f"IRSA role {role}" if role else ("IRSA" if group.iam_mode == "irsa" else "EKS Pod Identity")
            )
            hits.append(group_evidence(group, f"service account {group.service_account} uses {how}"))
    for (namespace, name), role in irsa_accounts.items():
        if (namespace, name) not in used:
            hits.append(Evidence("ServiceAccount", name, namespace, f"annotated with IRSA role {role}"))
    if hits:
        return [
            finding(
                "iam-dependent-workloads",
                Status.fail,
                f"{distinct_objects(hits)} workload(s) or service account(s) need STS for AWS credentials.",
                hits,
            )
        ]
    return [finding("iam-dependent-workloads", Status.passed, "No workload uses IRSA or Pod Identity.")]


def check_unreachable_toleration(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    every = workload_groups(snapshot)
    groups = [g for g in every if g.owner_kind != "DaemonSet"]
    if not groups:
        if every:
            return [
                finding(
                    "unreachable-toleration",
                    Status.passed,
                    "Only DaemonSets run here: their pods tolerate an unreachable node for ever, so "
                    "eviction does not apply.",
                )
            ]
        return [finding("unreachable-toleration", Status.unknown, "No workloads or pods to inspect.")]
    hits = [
        group_evidence(group, "evicted 300 s after its node becomes unreachable (default, nothing set)")
        for group in groups
        if group.unreachable_is_default
    ]
    if hits:
        return [
            finding(
                "unreachable-toleration",
                Status.warn,
                f"{distinct_objects(hits)} workload(s) rely on the default 300 s unreachable toleration.",
                hits,
            )
        ]
    return [
        finding(
            "unreachable-toleration",
            Status.passed,
            "Every workload sets its unreachable toleration explicitly.",
        )
    ]


__all__ = [
    "check_iam_dependent_workloads",
    "check_image_sources",
    "check_unreachable_toleration",
    "image_registry",
    "is_local",
    "normalize_image",
]
