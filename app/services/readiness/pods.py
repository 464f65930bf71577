"""Pods digested into groups (one per owner and template) and per-node load, in bounded memory.

A poller feeds pods page by page into `PodDigestBuilder.add` and drops each page; the digest costs
the memory of the distinct workloads and nodes, never of every pod. Evidence names the workload
(Deployment, StatefulSet, DaemonSet, Job) with a pod count, which is what an SRE acts on anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
READINESS_GATE_PREFIX = "target-health.elbv2.k8s.aws/"

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)}
_DECIMAL.update({"k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9)})
_DECIMAL.update({"T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1.5Gi", "2") as a Decimal of base units."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from None
    return base * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def cpu_millis(value: Any) -> int:
    try:
        return int(parse_quantity(value) * 1000)
    except ValueError:
        return 0


def memory_bytes(value: Any) -> int:
    try:
        return int(parse_quantity(value))
    except ValueError:
        return 0


@dataclass(frozen=True)
class ContainerFact:
    name: str
    image: str
    pull_policy: str
    init: bool = False


@dataclass(frozen=True)
class PodGroup:
    """Pods that share an owner and a template: what a check reports on."""

    namespace: str
    owner_kind: str
    owner_name: str
    example_pod: str
    containers: tuple[ContainerFact, ...]
    cpu_millis: int
    memory_bytes: int
    unreachable_seconds: int | None  # None: tolerates an unreachable node forever
    unreachable_is_default: bool  # True only when nothing is set (an explicit 300 s is a choice)
    service_account: str
    iam_mode: str | None  # irsa | pod-identity | None
    claims: tuple[str, ...]
    readiness_gates: bool
    node_selector: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    count: int = 1
    nodes: frozenset[str] = frozenset()
    # Volumes that need the EBS API: inline awsElasticBlockStore / EBS CSI volumes, and generic
    # ephemeral volumes (a new claim per pod); each as "volume-name: what" for evidence.
    ebs_volumes: tuple[str, ...] = ()
    ephemeral_classes: tuple[tuple[str, str | None], ...] = ()  # (volume name, storageClassName)
    config_maps: tuple[str, ...] = ()  # ConfigMaps mounted as volumes (log agents' outputs)

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(container.image for container in self.containers))


@dataclass(frozen=True)
class NodeLoad:
    pods: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0


@dataclass(frozen=True)
class PodDigest:
    groups: tuple[PodGroup, ...] = ()
    nodes: Mapping[str, NodeLoad] = field(default_factory=dict)
    total: int = 0
    # False for a manifest dump without pods; checks that need pods then say "unknown".
    collected: bool = False


def owner_of(pod: Mapping[str, Any]) -> tuple[str, str]:
    """The controller that owns `pod`, with ReplicaSets resolved to their Deployment."""
    metadata = pod.get("metadata") or {}
    for ref in metadata.get("ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        if kind == "ReplicaSet":
            template_hash = (metadata.get("labels") or {}).get("pod-template-hash")
            if template_hash and name.endswith("-" + template_hash):
                return "Deployment", name[: -len(template_hash) - 1]
        return kind, name
    return "Pod", str(metadata.get("name", ""))


def _iam_mode(spec: Mapping[str, Any]) -> str | None:
    for volume in spec.get("volumes") or []:
        name = str(volume.get("name", ""))
        if name == "aws-iam-token":
            return "irsa"
        if name == "eks-pod-identity-token":
            return "pod-identity"
    for container in spec.get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "AWS_ROLE_ARN":
                return "irsa"
            if env.get("name") == "AWS_CONTAINER_CREDENTIALS_FULL_URI":
                return "pod-identity"
    return None


def _unreachable(spec: Mapping[str, Any]) -> tuple[int | None, bool]:
    for toleration in spec.get("tolerations") or []:
        key = toleration.get("key")
        operator = toleration.get("operator", "Equal")
        if key == UNREACHABLE_TAINT or (key in (None, "") and operator == "Exists"):
            if toleration.get("effect") not in (None, "", "NoExecute"):
                continue
            seconds = toleration.get("tolerationSeconds")
            if seconds is None:
                return None, False
            return int(seconds), False
    # The DefaultTolerationSeconds admission plugin adds 300 s to every pod that sets nothing.
    return DEFAULT_TOLERATION_SECONDS, True


def template_facts(
    namespace: str, owner: tuple[str, str], example: str, template: Mapping[str, Any]
) -> PodGroup:
    """A PodGroup of zero pods from a pod template (a Deployment's spec.template, a Pod)."""
    spec = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    containers: list[ContainerFact] = []
    cpu = memory = 0
    for init, key in ((False, "containers"), (True, "initContainers")):
        for container in spec.get(key) or []:
            image = str(container.get("image", ""))
            default_policy = "Always" if image.endswith(":latest") or ":" not in image.split("/")[-1] else ""
            policy = str(container.get("imagePullPolicy") or default_policy or "IfNotPresent")
            containers.append(ContainerFact(str(container.get("name", "")), image, policy, init))
            if not init:
                requests = (container.get("resources") or {}).get("requests") or {}
                cpu += cpu_millis(requests.get("cpu", 0))
                memory += memory_bytes(requests.get("memory", 0))
    seconds, is_default = _unreachable(spec)
    claims = tuple(
        str(volume["persistentVolumeClaim"].get("claimName", ""))
        for volume in spec.get("volumes") or []
        if isinstance(volume.get("persistentVolumeClaim"), dict)
    )
    ebs_volumes: list[str] = []
    ephemeral: list[tuple[str, str | None]] = []
    config_maps: list[str] = []
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        vname = str(volume.get("name", ""))
        if isinstance(volume.get("awsElasticBlockStore"), Mapping):
            ebs_volumes.append(f"{vname}: inline awsElasticBlockStore volume")
        csi = volume.get("csi")
        if isinstance(csi, Mapping) and csi.get("driver") == "ebs.csi.aws.com":
            ebs_volumes.append(f"{vname}: inline EBS CSI volume")
        claim_template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate")
        if isinstance(claim_template, Mapping):
            cls = (claim_template.get("spec") or {}).get("storageClassName")
            ephemeral.append((vname, str(cls) if cls is not None else None))
        config_map = volume.get("configMap")
        if isinstance(config_map, Mapping) and config_map.get("name"):
            config_maps.append(str(config_map["name"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, Mapping) and (source.get("configMap") or {}).get("name"):
                config_maps.append(str(source["configMap"]["name"]))
    gates = any(
        str(gate.get("conditionType", "")).startswith(READINESS_GATE_PREFIX)
        for gate in spec.get("readinessGates") or []
    )
    return PodGroup(
        namespace=namespace,
        owner_kind=owner[0],
        owner_name=owner[1],
        example_pod=example,
        containers=tuple(containers),
        cpu_millis=cpu,
        memory_bytes=memory,
        unreachable_seconds=seconds,
        unreachable_is_default=is_default,
        service_account=str(spec.get("serviceAccountName") or "default"),
        iam_mode=_iam_mode(spec),
        claims=claims,
        readiness_gates=gates,
        node_selector=tuple(sorted((str(k), str(v)) for k, v in (spec.get("nodeSelector") or {}).items())),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items() if k != "pod-template-hash")),
        count=0,
        ebs_volumes=tuple(ebs_volumes),
        ephemeral_classes=tuple(ephemeral),
        config_maps=tuple(config_maps),
    )


class PodDigestBuilder:
    """Running summaries of pods: feed pages with `add`, then `build` once."""

    def __init__(self) -> None:
        self._groups: dict[tuple[Any, ...], PodGroup] = {}
        self._counts: dict[tuple[Any, ...], int] = {}
        self._nodes_of: dict[tuple[Any, ...], set[str]] = {}
        self._nodes: dict[str, list[int]] = {}
        self.total = 0

    def add(self, pod: Mapping[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return  # finished pods hold no capacity and are never rescheduled
        self.total += 1
        namespace = str(metadata.get("namespace") or "default")
        owner = owner_of(pod)
        group = template_facts(namespace, owner, str(metadata.get("name", "")), pod)
        key = (
            namespace,
            *owner,
            group.containers,
            group.cpu_millis,
            group.memory_bytes,
            group.unreachable_seconds,
            group.service_account,
            group.iam_mode,
            group.claims,
            group.ebs_volumes,
            group.ephemeral_classes,
            group.config_maps,
            group.readiness_gates,
            group.node_selector,
            group.labels,
        )
        if key not in self._groups:
            self._groups[key] = group
            self._counts[key] = 0
            self._nodes_of[key] = set()
        self._counts[key] += 1
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._nodes_of[key].add(str(node))
            load = self._nodes.setdefault(str(node), [0, 0, 0])
            load[0] += 1
            load[1] += group.cpu_millis
            load[2] += group.memory_bytes

    def extend(self, pods: Iterable[Mapping[str, Any]]) -> None:
        for pod in pods:
            self.add(pod)

    def build(self) -> PodDigest:
        groups = tuple(
            _with(group, self._counts[key], frozenset(self._nodes_of[key]))
            for key, group in self._groups.items()
        )
        nodes = {name: NodeLoad(*load) for name, load in self._nodes.items()}
        return PodDigest(groups=groups, nodes=nodes, total=self.total, collected=True)


def _with(group: PodGroup, count: int, nodes: frozenset[str]) -> PodGroup:
    return replace(group, count=count, nodes=nodes)
