"""API defaulting as kube-apiserver does it on decode (pkg/apis/*/v1/defaults.go), for the kinds served.

Applied to every create and update (PUT, patch, scale), so `kubectl get -o yaml` shows what a real
server would store: `spec.replicas: 1`, a RollingUpdate strategy with 25%/25%, `imagePullPolicy`,
`terminationMessagePath`, `dnsPolicy`, `schedulerName`, an empty pod `securityContext`, a Service's
allocated `clusterIP` with `ipFamilies`, ... Only fields the client left unset are filled.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Any

SERVICE_CIDR = ipaddress.ip_network("127.100.0.0/16")  # EKS uses 10.100.0.0/16; here loopback only
NODE_PORTS = range(30000, 32768)


def _set(node: dict[str, Any], key: str, value: Any) -> None:
    if node.get(key) is None:
        node[key] = value


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1)):
        _set(probe, key, value)
    _set(probe, "failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        _set(probe["httpGet"], "path", "/")
        _set(probe["httpGet"], "scheme", "HTTP")


def pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, IfNotPresent otherwise (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    _set(container, "imagePullPolicy", pull_policy(str(container.get("image") or "")))
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(probe))


def pod_spec(spec: Any) -> None:
    """core/v1 SetDefaults_PodSpec and its containers and volumes."""
    if not isinstance(spec, dict):
        return
    _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "securityContext", {})
    _set(spec, "terminationGracePeriodSeconds", 30)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in ("configMap", "secret", "downwardAPI", "projected"):
            if isinstance(volume.get(source), dict):
                _set(volume[source], "defaultMode", 420)
        if isinstance(volume.get("hostPath"), dict):
            _set(volume["hostPath"], "type", "")
        if not any(k != "name" for k in volume):
            volume["emptyDir"] = {}


def pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec(spec)
    _set(spec, "enableServiceLinks", True)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    _set(spec, "priority", 0)
    # The ServiceAccount and DefaultTolerationSeconds admission plugins.
    _set(spec, "serviceAccountName", spec.get("serviceAccount") or "default")
    _set(spec, "serviceAccount", spec["serviceAccountName"])
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(isinstance(t, dict) and t.get("key") == taint for t in tolerations):
            tolerations.append(
                {"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )


def _template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        pod_spec(template.setdefault("spec", {}))


def deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _set(spec, "replicas", 1)
    strategy = spec.setdefault("strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _template(spec)


def replica_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _set(spec, "replicas", 1)
    _template(spec)


def stateful_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(strategy.setdefault("rollingUpdate", {}), "partition", 0)
    _set(spec, "revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            _set(claim.setdefault("spec", {}), "volumeMode", "Filesystem")
            _set(claim, "status", {"phase": "Pending"})
    _template(spec)


def daemon_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _template(spec)


def job(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _set(spec, "completions", 1)
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    _template(spec)


def cron_job(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _template(job_template.setdefault("spec", {}))


def persistent_volume_claim(obj: dict[str, Any]) -> None:
    _set(obj.setdefault("spec", {}), "volumeMode", "Filesystem")


def namespace(obj: dict[str, Any]) -> None:
    _set(obj.setdefault("spec", {}), "finalizers", ["kubernetes"])


class ServiceAllocator:
    """Cluster IPs and node ports, as the Service REST storage allocates them on create."""

    def __init__(self, seed: int = 14) -> None:
        self._random = random.Random(seed)

    def cluster_ip(self, taken: set[str]) -> str:
        hosts = SERVICE_CIDR.num_addresses - 2
        while True:
            ip = str(SERVICE_CIDR.network_address + 11 + self._random.randrange(hosts - 11))
            if ip not in taken:
                return ip

    def node_port(self, taken: set[int]) -> int:
        while True:
            port = self._random.choice(NODE_PORTS)
            if port not in taken:
                return port


def service(
    obj: dict[str, Any],
    allocator: ServiceAllocator,
    taken_ips: set[str],
    taken_ports: set[int],
    current: dict[str, Any] | None = None,
) -> None:
    """core/v1 SetDefaults_Service plus the REST storage's IP family and allocation steps."""
    spec = obj.setdefault("spec", {})
    previous = (current or {}).get("spec") or {}
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if spec["type"] == "ExternalName":
        return
    _set(spec, "internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            _set(port, "targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                old: dict[str, Any] = next(
                    (p for p in previous.get("ports") or [] if p.get("port") == port.get("port")), {}
                )
                port["nodePort"] = old.get("nodePort") or allocator.node_port(taken_ports)
                taken_ports.add(port["nodePort"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    if not spec.get("clusterIP"):
        spec["clusterIP"] = previous.get("clusterIP") or allocator.cluster_ip(taken_ips)
    _set(spec, "clusterIPs", [spec["clusterIP"]])
    _set(spec, "ipFamilies", ["IPv4"])
    _set(spec, "ipFamilyPolicy", "SingleStack")


BY_KIND: dict[str, Callable[[dict[str, Any]], None]] = {
    "Pod": pod,
    "Deployment": deployment,
    "ReplicaSet": replica_set,
    "StatefulSet": stateful_set,
    "DaemonSet": daemon_set,
    "Job": job,
    "CronJob": cron_job,
    "PersistentVolumeClaim": persistent_volume_claim,
    "Namespace": namespace,
}

# Kinds whose metadata.generation the server maintains (1 on create, +1 on each spec change).
GENERATION_GROUPS = frozenset(
    {"apps", "batch", "policy", "networking.k8s.io", "autoscaling", "apiextensions.k8s.io"}
)
