"""Capacity checks: spare compute (N+1 and surge) and VPC CNI warm IPs against max pods per node."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.services.readiness.model import CheckContext, ClusterSnapshot, Evidence, Finding, Status
from app.services.readiness.objects import (
    instance_type_of,
    name_of,
    namespace_of,
    node_ready,
    schedulable_nodes,
    workload_groups,
)
from app.services.readiness.pods import cpu_millis, memory_bytes
from app.services.readiness.specs import finding


@dataclass(frozen=True)
class NodeCapacity:
    """One worker node: what it offers and what is requested on it (for checks and capacity bars)."""

    name: str
    instance_type: str | None
    ready: bool
    cpu_allocatable: int
    memory_allocatable: int
    pods_allocatable: int
    cpu_requested: int | None
    memory_requested: int | None
    pods: int | None
    max_pods: int | None

    @property
    def cpu_percent(self) -> float | None:
        if self.cpu_requested is None or not self.cpu_allocatable:
            return None
        return 100.0 * self.cpu_requested / self.cpu_allocatable

    @property
    def memory_percent(self) -> float | None:
        if self.memory_requested is None or not self.memory_allocatable:
            return None
        return 100.0 * self.memory_requested / self.memory_allocatable

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instance_type": self.instance_type,
            "ready": self.ready,
            "cpu_allocatable": self.cpu_allocatable,
            "memory_allocatable": self.memory_allocatable,
            "pods_allocatable": self.pods_allocatable,
            "cpu_requested": self.cpu_requested,
            "memory_requested": self.memory_requested,
            "pods": self.pods,
            "max_pods": self.max_pods,
        }


def node_capacities(snapshot: ClusterSnapshot) -> list[NodeCapacity]:
    limits = snapshot.aws.instance_types or {}
    result = []
    for node in schedulable_nodes(snapshot):
        allocatable: Mapping[str, Any] = (node.get("status") or {}).get("allocatable") or {}
        name = name_of(node)
        load = snapshot.pods.nodes.get(name) if snapshot.pods.collected else None
        itype = instance_type_of(node)
        limit = limits.get(itype) if itype else None
        pods_alloc = int(memory_bytes(allocatable.get("pods", 0)))
        result.append(
            NodeCapacity(
                name=name,
                instance_type=itype,
                ready=node_ready(node),
                cpu_allocatable=cpu_millis(allocatable.get("cpu", 0)),
                memory_allocatable=memory_bytes(allocatable.get("memory", 0)),
                pods_allocatable=pods_alloc,
                cpu_requested=(load.cpu_millis if load else 0) if snapshot.pods.collected else None,
                memory_requested=(load.memory_bytes if load else 0) if snapshot.pods.collected else None,
                pods=(load.pods if load else 0) if snapshot.pods.collected else None,
                max_pods=limit.max_pods if limit else (pods_alloc or None),
            )
        )
    return result


def _requested_totals(snapshot: ClusterSnapshot, nodes: list[NodeCapacity]) -> tuple[int, int, int, int]:
    """(cpu, memory) requested in total and by DaemonSets per node (which leave with a lost node)."""
    ds_cpu = ds_mem = 0
    groups = workload_groups(snapshot)
    for group in groups:
        if group.owner_kind == "DaemonSet":
            ds_cpu += group.cpu_millis
            ds_mem += group.memory_bytes
    if snapshot.pods.collected and snapshot.pods.total:
        return (
            sum(n.cpu_requested or 0 for n in nodes),
            sum(n.memory_requested or 0 for n in nodes),
            ds_cpu,
            ds_mem,
        )
    cpu = mem = 0
    for group in groups:
        copies = len(nodes) if group.owner_kind == "DaemonSet" else group.count
        cpu += group.cpu_millis * copies
        mem += group.memory_bytes * copies
    return cpu, mem, ds_cpu, ds_mem


def check_spare_capacity(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    nodes = [n for n in node_capacities(snapshot) if n.ready]
    if not nodes:
        return [finding("spare-capacity", Status.unknown, "No ready worker nodes in the data.")]
    cpu_alloc = sum(n.cpu_allocatable for n in nodes)
    mem_alloc = sum(n.memory_allocatable for n in nodes)
    cpu_req, mem_req, ds_cpu, ds_mem = _requested_totals(snapshot, nodes)
    largest = max(nodes, key=lambda n: (n.cpu_allocatable, n.memory_allocatable))
    cpu_left = cpu_alloc - largest.cpu_allocatable
    mem_left = mem_alloc - largest.memory_allocatable
    ev = [
        Evidence(
            "Node",
            n.name,
            None,
            f"{n.instance_type or '?'}: CPU {_pct(n.cpu_percent)} of {n.cpu_allocatable}m, "
            f"memory {_pct(n.memory_percent)} of {n.memory_allocatable // 2**20} Mi requested",
        )
        for n in nodes
    ]
    shift = context.horizon_shift
    totals = (
        f"requests {cpu_req}m CPU / {mem_req // 2**20} Mi against {cpu_alloc}m / "
        f"{mem_alloc // 2**20} Mi allocatable on {len(nodes)} node(s)"
    )
    if cpu_req > cpu_alloc or mem_req > mem_alloc:
        return [
            finding(
                "spare-capacity",
                Status.fail,
                f"{len(ev)} ready node(s) cannot hold what is requested: {totals}.",
                ev,
                horizon_shift=shift,
            )
        ]
    if len(nodes) < 2 or cpu_req - ds_cpu > cpu_left or mem_req - ds_mem > mem_left:
        return [
            finding(
                "spare-capacity",
                Status.fail,
                f"{len(ev)} ready node(s): losing {largest.name} would leave pods unplaceable "
                f"({totals}); no node can be launched while disconnected.",
                ev,
                horizon_shift=shift,
            )
        ]
    surge = 1 + context.surge_percent / 100
    if math.ceil(cpu_req * surge) > cpu_alloc or math.ceil(mem_req * surge) > mem_alloc:
        return [
            finding(
                "spare-capacity",
                Status.warn,
                f"{len(ev)} ready node(s) leave no room for a {context.surge_percent}% surge: {totals}.",
                ev,
                horizon_shift=shift,
            )
        ]
    return [
        finding(
            "spare-capacity",
            Status.passed,
            f"{len(ev)} ready node(s) survive the loss of {largest.name} and a "
            f"{context.surge_percent}% surge: {totals}.",
            ev,
        )
    ]


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}%"


def _aws_node_env(snapshot: ClusterSnapshot) -> dict[str, str] | None:
    for ds in snapshot.of_kind("DaemonSet"):
        if name_of(ds) == "aws-node" and namespace_of(ds) == "kube-system":
            containers = ((ds.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers"
            ) or []
            for container in containers:
                if container.get("name") == "aws-node":
                    return {
                        str(e.get("name")): str(e.get("value", ""))
                        for e in container.get("env") or []
                        if "value" in e
                    }
            return {}
    return None


def _int_env(env: Mapping[str, str], key: str) -> int | None:
    try:
        return int(env[key]) if env.get(key, "").strip() else None
    except ValueError:
        return None


def check_vpc_cni_warm_ips(snapshot: ClusterSnapshot, context: CheckContext) -> list[Finding]:
    env = _aws_node_env(snapshot)
    nodes = [n for n in node_capacities(snapshot) if n.ready]
    if env is None:
        status = Status.warn if snapshot.live else Status.unknown
        return [finding("vpc-cni-warm-ips", status, "DaemonSet kube-system/aws-node was not found.")]
    if not nodes:
        return [finding("vpc-cni-warm-ips", Status.unknown, "No ready worker nodes in the data.")]
    warm_eni = _int_env(env, "WARM_ENI_TARGET")
    warm_ip = _int_env(env, "WARM_IP_TARGET")
    minimum = _int_env(env, "MINIMUM_IP_TARGET")
    setting = (
        ", ".join(
            f"{k}={env[k]}" for k in ("WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET") if k in env
        )
        or "defaults (WARM_ENI_TARGET=1)"
    )
    limits = snapshot.aws.instance_types or {}
    biggest = max((n.pods or 0) for n in nodes)
    ev: list[Evidence] = [Evidence("DaemonSet", "aws-node", "kube-system", setting)]
    short: list[Evidence] = []
    unknown = 0
    for node in nodes:
        pods = node.pods or 0
        # What a node may gain while disconnected: the surge plus its share of a lost node's pods.
        gain = math.ceil(pods * context.surge_percent / 100) + math.ceil(biggest / max(1, len(nodes) - 1))
        limit = limits.get(node.instance_type) if node.instance_type else None
        if warm_ip is not None or minimum is not None:
            warm = max(warm_ip or 0, (minimum or 0) - pods)
        elif limit is not None:
            warm = (1 if warm_eni is None else warm_eni) * (limit.ipv4_per_eni - 1)
        else:
            unknown += 1
            continue
        problems = []
        if warm < gain:
            problems.append(f"{warm} warm IP(s) for an expected gain of {gain} pod(s)")
        if node.max_pods is not None and pods + gain > node.max_pods:
            problems.append(f"{pods} pods + {gain} exceeds max pods {node.max_pods}")
        detail = "; ".join(problems) or f"{warm} warm IP(s) >= expected gain {gain}"
        item = Evidence("Node", node.name, None, f"{node.instance_type or '?'}: {detail}")
        (short if problems else ev).append(item)
    shift = context.horizon_shift
    if short:
        return [
            finding(
                "vpc-cni-warm-ips",
                Status.fail,
                f"{len(short)} node(s) cannot hand IPs to the pods they may gain while EC2 is "
                f"unreachable ({setting} on DaemonSet kube-system/aws-node).",
                short,
                horizon_shift=shift,
            )
        ]
    if unknown == len(nodes):
        return [
            finding(
                "vpc-cni-warm-ips",
                Status.unknown,
                f"{setting}: instance network limits (DescribeInstanceTypes) are needed to size warm ENIs.",
                ev,
            )
        ]
    return [finding("vpc-cni-warm-ips", Status.passed, f"Warm IPs cover the expected gain ({setting}).", ev)]
