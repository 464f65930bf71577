"""Small controllers that make everyday kubectl honest: Deployment -> ReplicaSet -> Pods, StatefulSet and
DaemonSet pods, Job pods (which complete as soon as they start: the simulator runs no containers), a
scheduler, a kubelet that starts bound pods, the namespace lifecycle, Endpoints and
EndpointSlices, node leases and the events all of them record.

Every write through the API (and every controller write) marks the objects it concerns dirty; `settle()`
runs the controllers until nothing is dirty. The API calls it after each write, so when `kubectl create
deployment` returns, its ReplicaSet and pods exist: deterministic for tests, where a real cluster would
get there a moment later. A background thread (`start`) finishes namespaces that are Terminating and
renews node leases on the simulator's clock.

Objects loaded from manifests are snapshots: the controllers leave them alone until the API changes
them. Then they adopt what the snapshot holds by name (a pod whose owner reference names the
ReplicaSet or DaemonSet, whatever its uid), so a demo Deployment scaled with kubectl keeps its pods.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from lifeline_simulator.errors import ApiError
from lifeline_simulator.resources import BY_GROUP_PLURAL, ResourceType
from lifeline_simulator.store import timestamp
from lifeline_simulator.subresources import matches

if TYPE_CHECKING:
    from lifeline_simulator.cluster import SimulatedCluster

log = logging.getLogger("lifeline.simulator")

PODS = BY_GROUP_PLURAL[("", "pods")]
NODES = BY_GROUP_PLURAL[("", "nodes")]
NAMESPACES = BY_GROUP_PLURAL[("", "namespaces")]
SERVICES = BY_GROUP_PLURAL[("", "services")]
ENDPOINTS = BY_GROUP_PLURAL[("", "endpoints")]
EVENTS = BY_GROUP_PLURAL[("", "events")]
CLAIMS = BY_GROUP_PLURAL[("", "persistentvolumeclaims")]
SLICES = BY_GROUP_PLURAL[("discovery.k8s.io", "endpointslices")]
LEASES = BY_GROUP_PLURAL[("coordination.k8s.io", "leases")]
DEPLOYMENTS = BY_GROUP_PLURAL[("apps", "deployments")]
REPLICASETS = BY_GROUP_PLURAL[("apps", "replicasets")]
STATEFULSETS = BY_GROUP_PLURAL[("apps", "statefulsets")]
DAEMONSETS = BY_GROUP_PLURAL[("apps", "daemonsets")]
JOBS = BY_GROUP_PLURAL[("batch", "jobs")]
WORKLOADS = {"Deployment": DEPLOYMENTS, "ReplicaSet": REPLICASETS, "StatefulSet": STATEFULSETS}
WORKLOADS["DaemonSet"] = DAEMONSETS
WORKLOADS["Job"] = JOBS
JOB_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"

REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"
REVISION_HASH = "controller-revision-hash"
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand's alphabet
NOT_COPIED = frozenset({REVISION, "kubectl.kubernetes.io/last-applied-configuration"})
NAMESPACE_FINISH_SECONDS = 2.0  # how long a namespace stays Terminating (wall clock)
LEASE_RENEW_SECONDS = 10
MAX_ROUNDS = 400

Key = tuple[str, str, str]  # (controller, namespace, name)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.setdefault("metadata", {})
    return meta


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest[:10])


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH, None)
        labels.pop(REVISION_HASH, None)
    return out


def is_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    if any(c.get("type") == "Ready" for c in conditions):
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    containers = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(containers) and all(c.get("ready") for c in containers)


def node_ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _tolerates(pod_spec: dict[str, Any], taint: dict[str, Any]) -> bool:
    for toleration in pod_spec.get("tolerations") or []:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return True
        if toleration.get("key") != taint.get("key"):
            continue
        if toleration.get("operator") == "Exists" or toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


class Controllers:
    """The simulator's controller manager, scheduler and kubelet (see the module docstring)."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self._dirty: dict[Key, None] = {}
        self._dirty_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._random = random.Random(14)
        self._terminating: dict[str, float] = {}
        self._last_renewal: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.store.listeners.append(self._observe)

    # ------------------------------------------------------------------ the work queue

    def mark(self, controller: str, namespace: str, name: str) -> None:
        with self._dirty_lock:
            self._dirty[(controller, namespace, name)] = None

    def _observe(self, rtype: ResourceType, kind: str, obj: dict[str, Any], loaded: bool) -> None:
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if rtype.kind == "Node":
            self.mark("lease", "", name)
        if loaded:
            return
        if rtype in (DEPLOYMENTS, REPLICASETS, STATEFULSETS, DAEMONSETS, JOBS):
            self.mark(rtype.kind, namespace, name)
            if kind == "DELETED":
                self.mark("gc", namespace, meta.get("uid", ""))
        ref = controller_of(obj)
        if ref is not None and ref.get("kind") in WORKLOADS:
            self.mark(str(ref["kind"]), namespace, str(ref.get("name")))
        if rtype is PODS:
            if kind != "DELETED" and not _spec(obj).get("nodeName"):
                self.mark("scheduler", namespace, name)
            self.mark("endpoints-in", namespace, "")
        elif rtype is SERVICES:
            self.mark("endpoints", namespace, name)
        elif rtype is NODES and kind != "DELETED":
            self.mark("daemonsets", "", "")
            self.mark("pending", "", "")
        elif rtype is NAMESPACES and meta.get("deletionTimestamp"):
            self._terminating.setdefault(name, time.monotonic() + NAMESPACE_FINISH_SECONDS)

    def settle(self) -> None:
        """Run controllers until nothing is dirty (bounded: a bug must not hang a request)."""
        with self._run_lock:
            for _ in range(MAX_ROUNDS):
                with self._dirty_lock:
                    if not self._dirty:
                        return
                    key = next(iter(self._dirty))
                    del self._dirty[key]
                try:
                    self._reconcile(*key)
                except ApiError as exc:  # a namespace went away under us, a conflict: the next round
                    log.debug("simulator controller %s: %s", key, exc.message)
            log.warning("simulator controllers did not settle after %d rounds", MAX_ROUNDS)

    def _reconcile(self, controller: str, namespace: str, name: str) -> None:
        handler = {
            "Deployment": self._deployment,
            "ReplicaSet": self._replica_set,
            "StatefulSet": self._stateful_set,
            "DaemonSet": self._daemon_set,
            "Job": self._job,
            "scheduler": self._schedule,
            "gc": self._collect,
            "endpoints": self._endpoints,
            "lease": self._lease,
        }.get(controller)
        if handler is not None:
            handler(namespace, name)
        elif controller == "endpoints-in":
            for service in self.store.list(SERVICES, namespace).items:
                self.mark("endpoints", namespace, service["metadata"]["name"])
        elif controller == "daemonsets":
            for ds in self.store.list(DAEMONSETS, None).items:
                self.mark("DaemonSet", ds["metadata"]["namespace"], ds["metadata"]["name"])
        elif controller == "pending":
            for pod in self.store.list(PODS, None, field_selector="spec.nodeName=").items:
                self.mark("scheduler", pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ------------------------------------------------------------------ the background loop

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        for node in self.store.list(NODES, None).items:
            self.mark("lease", "", node["metadata"]["name"])
        self.settle()
        self._thread = threading.Thread(target=self._loop, name="k8s-simulator-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.tick()
            except Exception:  # keep the loop alive; the request path reports its own errors
                log.exception("simulator controllers: tick failed")

    def tick(self) -> None:
        now = time.monotonic()
        for name, due in list(self._terminating.items()):
            if due <= now:
                self._finish_namespace(name)
                self._terminating.pop(name, None)
        moment = self.cluster.now()
        if self._last_renewal is None or (moment - self._last_renewal).total_seconds() >= LEASE_RENEW_SECONDS:
            self._last_renewal = moment
            for node in self.store.list(NODES, None).items:
                if node_ready(node):
                    self.mark("lease", "", node["metadata"]["name"])
        self.settle()

    # ------------------------------------------------------------------ events

    def record(
        self,
        obj: dict[str, Any],
        reason: str,
        message: str,
        *,
        component: str,
        kind: str = "Normal",
        field_path: str = "",
        host: str = "",
    ) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = timestamp(self.cluster.now())
        involved = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": component, **({"host": host} if host else {})}
        event = {
            "metadata": {"name": f"{meta.get('name')}.{self._random.getrandbits(64):016x}"},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        with contextlib.suppress(ApiError):  # the namespace is gone
            self.store.create(EVENTS, namespace, event)

    # ------------------------------------------------------------------ helpers

    def _suffix(self) -> str:
        return "".join(self._random.choice(ALPHANUMS) for _ in range(5))

    def _write_status(self, rtype: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> None:
        if obj.get("status") == status:
            return
        meta = obj["metadata"]
        self.store.replace(
            rtype, meta.get("namespace", ""), meta["name"], {"status": status}, subresource="status"
        )

    def _owned(self, rtype: ResourceType, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Objects controlled by `owner`; orphans matching its selector and snapshot ones named for it
        are adopted (their owner reference rewritten)."""
        meta = owner["metadata"]
        selector = _spec(owner).get("selector")
        out = []
        for obj in self.store.list(rtype, meta["namespace"]).items:
            if obj["metadata"].get("deletionTimestamp"):
                continue
            ref = controller_of(obj)
            if ref is not None and ref.get("uid") == meta["uid"]:
                out.append(obj)
                continue
            named_for_it = (
                ref is not None and ref.get("kind") == owner["kind"] and ref.get("name") == meta["name"]
            )
            orphan = ref is None and matches(selector, obj["metadata"].get("labels") or {})
            if (named_for_it and self._owner_missing(ref, meta["namespace"])) or orphan:
                others = [r for r in obj["metadata"].get("ownerReferences") or [] if not r.get("controller")]
                obj["metadata"]["ownerReferences"] = [*others, owner_ref(owner)]
                obj = self.store.replace(rtype, meta["namespace"], obj["metadata"]["name"], obj)
                out.append(obj)
        return out

    def _owner_missing(self, ref: dict[str, Any] | None, namespace: str) -> bool:
        if ref is None:
            return True
        rtype = WORKLOADS.get(str(ref.get("kind")))
        if rtype is None:
            return False
        found = self.store.find(rtype, namespace, str(ref.get("name")))
        return found is None or found["metadata"].get("uid") != ref.get("uid")

    def _new_pod(
        self, owner: dict[str, Any], name: str, template: dict[str, Any], **spec: Any
    ) -> dict[str, Any]:
        template = copy.deepcopy(template or {})
        meta = template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": meta.get("labels") or {},
                **({"annotations": meta["annotations"]} if meta.get("annotations") else {}),
                "ownerReferences": [owner_ref(owner)],
            },
            "spec": {**(template.get("spec") or {}), **spec},
        }
        return pod

    def _create_pod(self, owner: dict[str, Any], pod: dict[str, Any], message: str) -> dict[str, Any] | None:
        namespace = owner["metadata"]["namespace"]
        try:
            created = self.cluster.create_object(PODS, namespace, pod, self.cluster.controller_identity)
        except ApiError as exc:
            self.record(
                owner,
                "FailedCreate",
                f"Error creating: {exc.message}",
                component=_component(owner),
                kind="Warning",
            )
            return None
        self.record(
            owner,
            "SuccessfulCreate",
            message.format(name=created["metadata"]["name"]),
            component=_component(owner),
        )
        return created

    def _delete_pod(self, owner: dict[str, Any], pod: dict[str, Any], message: str) -> None:
        meta = pod["metadata"]
        try:
            self.store.delete(PODS, meta["namespace"], meta["name"])
        except ApiError:
            return
        self.record(owner, "SuccessfulDelete", message.format(name=meta["name"]), component=_component(owner))

    def _collect(self, namespace: str, uid: str) -> None:
        """The garbage collector: dependents of a deleted owner go too (background propagation)."""
        for rtype in (REPLICASETS, JOBS, PODS):
            for obj in self.store.list(rtype, namespace).items:
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                    with contextlib.suppress(ApiError):
                        self.store.delete(rtype, namespace, obj["metadata"]["name"])
                    if rtype is REPLICASETS:
                        self.mark("gc", namespace, obj["metadata"]["uid"])

    # ------------------------------------------------------------------ Deployment

    def _deployment(self, namespace: str, name: str) -> None:
        deployment = self.store.find(DEPLOYMENTS, namespace, name)
        if deployment is None:
            return
        spec = _spec(deployment)
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        owned = self._owned(REPLICASETS, deployment)
        revisions = [int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0) for rs in owned]
        top = max(revisions, default=0)
        current = next(
            (rs for rs in owned if _without_hash(_spec(rs).get("template") or {}) == _without_hash(template)),
            None,
        )
        copied = {
            k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED
        }
        if current is None:
            pod_hash = template_hash(template)
            labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH: pod_hash}
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {})["labels"] = labels
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})[HASH] = pod_hash
            annotations = {
                **copied,
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                REVISION: str(top + 1),
            }
            new_rs: dict[str, Any] = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{pod_hash}",
                    "labels": labels,
                    "annotations": annotations,
                    "ownerReferences": [owner_ref(deployment)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": rs_template},
            }
            self.cluster.apply_defaults(REPLICASETS, namespace, new_rs)
            current = self.store.create(REPLICASETS, namespace, new_rs)
            owned.append(current)
        else:
            annotations = current["metadata"].get("annotations") or {}
            revision = int(annotations.get(REVISION, "0") or 0)
            wanted = {**annotations, **copied, REVISION: str(revision if revision == top else top + 1)}
            if wanted != annotations:
                current["metadata"]["annotations"] = wanted
                current = self.store.replace(REPLICASETS, namespace, current["metadata"]["name"], current)
                owned = [
                    current if rs["metadata"]["uid"] == current["metadata"]["uid"] else rs for rs in owned
                ]
        revision = (current["metadata"].get("annotations") or {}).get(REVISION, "1")
        if (deployment["metadata"].get("annotations") or {}).get(REVISION) != revision:
            deployment["metadata"].setdefault("annotations", {})[REVISION] = revision
            deployment = self.store.replace(DEPLOYMENTS, namespace, name, deployment)
        for rs in owned:
            want = replicas if rs["metadata"]["uid"] == current["metadata"]["uid"] else 0
            if spec.get("paused"):
                continue
            have = int(_spec(rs).get("replicas", 1))
            if have != want:
                rs["spec"]["replicas"] = want
                rs["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = (
                    str(replicas)
                )
                self.store.replace(REPLICASETS, namespace, rs["metadata"]["name"], rs)
                direction = "up" if want > have else "down"
                self.record(
                    deployment,
                    "ScalingReplicaSet",
                    f"Scaled {direction} replica set {rs['metadata']['name']} from {have} to {want}",
                    component="deployment-controller",
                )
        old = sorted(
            (
                rs
                for rs in owned
                if rs["metadata"]["uid"] != current["metadata"]["uid"]
                and int(_spec(rs).get("replicas", 0)) == 0
                and not (rs.get("status") or {}).get("replicas")
            ),
            key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0),
        )
        limit = int(spec.get("revisionHistoryLimit", 10))
        for rs in old[: max(0, len(old) - limit)]:
            self.store.delete(REPLICASETS, namespace, rs["metadata"]["name"])
        found = [self.store.find(REPLICASETS, namespace, rs["metadata"]["name"]) for rs in owned]
        live = [rs for rs in found if rs is not None]
        new_status = next(
            (rs.get("status") or {} for rs in live if rs["metadata"]["uid"] == current["metadata"]["uid"]), {}
        )
        total = sum(int((rs.get("status") or {}).get("replicas") or 0) for rs in live)
        ready = sum(int((rs.get("status") or {}).get("readyReplicas") or 0) for rs in live)
        available = sum(int((rs.get("status") or {}).get("availableReplicas") or 0) for rs in live)
        updated = int(new_status.get("replicas") or 0)
        now = timestamp(self.cluster.now())
        previous = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            old_cond = previous.get(kind) or {}
            status = "True" if ok else "False"
            same = old_cond.get("status") == status and old_cond.get("reason") == reason
            return {
                "type": kind,
                "status": status,
                "lastUpdateTime": old_cond.get("lastUpdateTime") if same else now,
                "lastTransitionTime": old_cond.get("lastTransitionTime")
                if old_cond.get("status") == status
                else now,
                "reason": reason,
                "message": message,
            }

        rs_name = current["metadata"]["name"]
        done = updated == replicas and total == updated and available >= updated
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
        }
        if total - available > 0:
            status["unavailableReplicas"] = total - available
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        status["conditions"] = [
            condition(
                "Available",
                available >= replicas - _max_unavailable(spec, replicas),
                "MinimumReplicasAvailable"
                if available >= replicas - _max_unavailable(spec, replicas)
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= replicas - _max_unavailable(spec, replicas)
                else "Deployment does not have minimum availability.",
            ),
            condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if done
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ]
        self._write_status(DEPLOYMENTS, deployment, status)

    # ------------------------------------------------------------------ ReplicaSet

    def _replica_set(self, namespace: str, name: str) -> None:
        rs = self.store.find(REPLICASETS, namespace, name)
        if rs is None:
            return
        spec = _spec(rs)
        replicas = int(spec.get("replicas", 1))
        pods = self._owned(PODS, rs)
        if len(pods) < replicas:
            for _ in range(replicas - len(pods)):
                pod = self._new_pod(rs, f"{name}-{self._suffix()}", spec.get("template") or {})
                created = self._create_pod(rs, pod, "Created pod: {name}")
                if created is not None:
                    pods.append(created)
        elif len(pods) > replicas:
            doomed = sorted(
                pods, key=lambda p: (is_ready(p), bool(_spec(p).get("nodeName")), p["metadata"]["name"])
            )
            for pod in doomed[: len(pods) - replicas]:
                self._delete_pod(rs, pod, "Deleted pod: {name}")
                pods.remove(pod)
        ready = sum(1 for p in pods if is_ready(p))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        self._write_status(
            REPLICASETS, rs, {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        )

    # ------------------------------------------------------------------ Job

    def _job(self, namespace: str, name: str) -> None:
        """The job controller: pods up to `parallelism` until `completions` succeeded. No container
        runs here, so a Job pod that the kubelet starts completes at once (exit code 0)."""
        job = self.store.find(JOBS, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        spec, meta = _spec(job), job["metadata"]
        status = copy.deepcopy(job.get("status") or {})
        if any(
            c.get("type") == "Complete" and c.get("status") == "True" for c in status.get("conditions") or []
        ):
            return
        completions = int(spec.get("completions") or 1)
        parallelism = int(spec["parallelism"]) if spec.get("parallelism") is not None else 1
        pods = [
            p
            for p in self.store.list(PODS, namespace).items
            if (controller_of(p) or {}).get("uid") == meta["uid"]
            and not p["metadata"].get("deletionTimestamp")
        ]
        for pod in pods:
            if (pod.get("status") or {}).get("phase") == "Running":
                self._complete_pod(pod)
        pods = [self.store.find(PODS, namespace, p["metadata"]["name"]) or p for p in pods]
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = len(pods) - succeeded - failed
        now = timestamp(self.cluster.now())
        status.setdefault("startTime", now)
        if not spec.get("suspend"):
            wanted = min(parallelism, completions - succeeded) - active
            template = copy.deepcopy(spec.get("template") or {})
            labels = {**((template.get("metadata") or {}).get("labels") or {})}
            labels.update(
                {JOB_UID: meta["uid"], JOB_NAME: name, "controller-uid": meta["uid"], "job-name": name}
            )
            template.setdefault("metadata", {})["labels"] = labels
            for _ in range(max(wanted, 0)):
                pod = self._new_pod(job, f"{name}-{self._suffix()}", template)
                if self._create_pod(job, pod, "Created pod: {name}") is not None:
                    active += 1
        status.update({"succeeded": succeeded, "failed": failed, "active": active})
        status["ready"] = 0
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        for key in ("succeeded", "failed", "active"):
            if not status[key]:
                status.pop(key)
        if succeeded >= completions:
            status.pop("active", None)
            status["completionTime"] = now
            status["conditions"] = [
                {"type": kind, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
                 **({"reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}
                    if kind == "SuccessCriteriaMet" else {})}
                for kind in ("SuccessCriteriaMet", "Complete")
            ]  # fmt: skip
            self.record(job, "Completed", "Job completed", component="job-controller")
        self._write_status(JOBS, job, status)

    def _complete_pod(self, pod: dict[str, Any]) -> None:
        status = copy.deepcopy(pod.get("status") or {})
        now = timestamp(self.cluster.now())
        status["phase"] = "Succeeded"
        status["conditions"] = [
            {**c, "status": "False", "reason": "PodCompleted"}
            if c.get("type") in ("Ready", "ContainersReady")
            else c
            for c in status.get("conditions") or []
        ]
        for container in status.get("containerStatuses") or []:
            started = ((container.get("state") or {}).get("running") or {}).get("startedAt", now)
            container["state"] = {
                "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}
            }
            container["ready"] = False
            container["started"] = False
        self._write_status(PODS, pod, status)

    # ------------------------------------------------------------------ StatefulSet

    def _stateful_set(self, namespace: str, name: str) -> None:
        sts = self.store.find(STATEFULSETS, namespace, name)
        if sts is None:
            return
        spec = _spec(sts)
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        revision = f"{name}-{template_hash(template)[:10]}"
        pods = {p["metadata"]["name"]: p for p in self._owned(PODS, sts)}
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name in pods:
                pod = pods[pod_name]
                if (pod["metadata"].get("labels") or {}).get(REVISION_HASH) not in (None, revision) and all(
                    is_ready(p) for p in pods.values()
                ):
                    self._delete_pod(sts, pod, f"delete Pod {{name}} in StatefulSet {name} successful")
                    del pods[pod_name]
                    break
                if ordered and not is_ready(pod):
                    break
                continue
            volumes = list((template.get("spec") or {}).get("volumes") or [])
            for claim_template in spec.get("volumeClaimTemplates") or []:
                claim_name = f"{claim_template['metadata']['name']}-{pod_name}"
                if self.store.find(CLAIMS, namespace, claim_name) is None:
                    claim = {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {
                            "name": claim_name,
                            "labels": (template.get("metadata") or {}).get("labels") or {},
                        },
                        "spec": copy.deepcopy(claim_template.get("spec") or {}),
                    }
                    self.cluster.create_object(CLAIMS, namespace, claim, self.cluster.controller_identity)
                    self.record(
                        sts,
                        "SuccessfulCreate",
                        f"create Claim {claim_name} Pod {pod_name} in StatefulSet {name} success",
                        component="statefulset-controller",
                    )
                volumes = [v for v in volumes if v.get("name") != claim_template["metadata"]["name"]]
                volumes.append(
                    {
                        "name": claim_template["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim_name},
                    }
                )
            pod = self._new_pod(
                sts, pod_name, template, hostname=pod_name, subdomain=spec.get("serviceName", "")
            )
            if volumes:
                pod["spec"]["volumes"] = volumes
            pod["metadata"]["labels"] = {
                **pod["metadata"]["labels"],
                REVISION_HASH: revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            }
            created = self._create_pod(sts, pod, f"create Pod {{name}} in StatefulSet {name} successful")
            if created is None or (ordered and not is_ready(created)):
                break
            pods[pod_name] = created
            if ordered:
                self.mark("StatefulSet", namespace, name)
                break
        for pod_name, pod in sorted(pods.items(), reverse=True):
            ordinal = pod_name.rsplit("-", 1)[-1]
            if not ordinal.isdigit() or int(ordinal) >= replicas:
                self._delete_pod(sts, pod, f"delete Pod {{name}} in StatefulSet {name} successful")
                del pods[pod_name]
        ready = sum(1 for p in pods.values() if is_ready(p))
        updated = sum(
            1 for p in pods.values() if (p["metadata"].get("labels") or {}).get(REVISION_HASH) == revision
        )
        current_revision = (
            revision
            if updated == len(pods) == replicas
            else (sts.get("status") or {}).get("currentRevision", revision)
        )
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": len(pods) if current_revision == revision else len(pods) - updated,
            "updatedReplicas": updated,
            "availableReplicas": ready,
            "currentRevision": current_revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        self._write_status(
            STATEFULSETS,
            sts,
            {
                k: v
                for k, v in status.items()
                if v or k in ("replicas", "observedGeneration", "collisionCount", "availableReplicas")
            },
        )

    # ------------------------------------------------------------------ DaemonSet

    def _daemon_set(self, namespace: str, name: str) -> None:
        ds = self.store.find(DAEMONSETS, namespace, name)
        if ds is None:
            return
        spec = _spec(ds)
        template = spec.get("template") or {}
        pod_spec = template.get("spec") or {}
        revision = template_hash(template)[:10]
        wanted = [
            n
            for n in self.store.list(NODES, None).items
            if all(
                (n["metadata"].get("labels") or {}).get(k) == v
                for k, v in (pod_spec.get("nodeSelector") or {}).items()
            )
            and all(
                _tolerates(pod_spec, t)
                for t in _spec(n).get("taints") or []
                if t.get("effect") in ("NoSchedule", "NoExecute")
            )
        ]
        wanted_names = {n["metadata"]["name"] for n in wanted}
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in self._owned(PODS, ds):
            by_node.setdefault(str(_spec(pod).get("nodeName") or ""), []).append(pod)
        for node_name, pods in list(by_node.items()):
            for pod in pods if node_name not in wanted_names else pods[1:]:
                self._delete_pod(ds, pod, "Deleted pod: {name}")
            if node_name not in wanted_names:
                del by_node[node_name]
            else:
                pod = pods[0]
                labels = pod["metadata"].get("labels") or {}
                if labels.get(REVISION_HASH) not in (None, revision):
                    self._delete_pod(ds, pod, "Deleted pod: {name}")
                    del by_node[node_name]
                else:
                    by_node[node_name] = [pod]
        for node_name in sorted(wanted_names - set(by_node)):
            pod = self._new_pod(ds, f"{name}-{self._suffix()}", template, nodeName=node_name)
            pod["metadata"]["labels"] = {**pod["metadata"]["labels"], REVISION_HASH: revision}
            created = self._create_pod(ds, pod, "Created pod: {name}")
            if created is not None:
                by_node[node_name] = [created]
        pods = [p[0] for p in by_node.values()]
        ready = sum(1 for p in pods if is_ready(p))
        updated = sum(
            1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_HASH) in (None, revision)
        )
        status = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(wanted_names),
            "currentNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "numberAvailable": ready,
        }
        if len(wanted_names) - ready:
            status["numberUnavailable"] = len(wanted_names) - ready
        self._write_status(DAEMONSETS, ds, status)

    # ------------------------------------------------------------------ scheduler and kubelet

    def _schedule(self, namespace: str, name: str) -> None:
        pod = self.store.find(PODS, namespace, name)
        if pod is None or _spec(pod).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        spec = _spec(pod)
        nodes = self.store.list(NODES, None).items
        load: dict[str, int] = {}
        for other in self.store.list(PODS, None).items:
            phase = (other.get("status") or {}).get("phase")
            if _spec(other).get("nodeName") and phase not in ("Succeeded", "Failed"):
                load[_spec(other)["nodeName"]] = load.get(_spec(other)["nodeName"], 0) + 1
        reasons: dict[str, int] = {}
        fits = []
        for node in nodes:
            node_name = node["metadata"]["name"]
            taints = [
                t for t in _spec(node).get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")
            ]
            capacity = int(((node.get("status") or {}).get("allocatable") or {}).get("pods", 110))
            if _spec(node).get("unschedulable"):
                reasons["node(s) were unschedulable"] = reasons.get("node(s) were unschedulable", 0) + 1
            elif not node_ready(node):
                reasons["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"] = (
                    reasons.get("node(s) had untolerated taint {node.kubernetes.io/not-ready: }", 0) + 1
                )
            elif any(not _tolerates(spec, t) for t in taints):
                reasons["node(s) had untolerated taint(s)"] = (
                    reasons.get("node(s) had untolerated taint(s)", 0) + 1
                )
            elif any(
                (node["metadata"].get("labels") or {}).get(k) != v
                for k, v in (spec.get("nodeSelector") or {}).items()
            ):
                reasons["node(s) didn't match Pod's node affinity/selector"] = (
                    reasons.get("node(s) didn't match Pod's node affinity/selector", 0) + 1
                )
            elif load.get(node_name, 0) >= capacity:
                reasons["Too many pods"] = reasons.get("Too many pods", 0) + 1
            else:
                fits.append((load.get(node_name, 0), node_name))
        if not fits:
            detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
            message = (
                f"0/{len(nodes)} nodes are available: {detail}."
                if detail
                else f"0/{len(nodes)} nodes are available."
            )
            status = {
                **(pod.get("status") or {}),
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                        "lastTransitionTime": timestamp(self.cluster.now()),
                        "lastProbeTime": None,
                    }
                ],
            }
            if (pod.get("status") or {}).get("conditions") != status["conditions"][:1] or True:
                old = ((pod.get("status") or {}).get("conditions") or [{}])[0]
                if old.get("message") != message:
                    self._write_status(PODS, pod, status)
                    self.record(
                        pod, "FailedScheduling", message, component="default-scheduler", kind="Warning"
                    )
            return
        node_name = min(fits)[1]
        pod["spec"]["nodeName"] = node_name
        pod = self.store.replace(PODS, namespace, name, pod)
        self.record(
            pod,
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node_name}",
            component="default-scheduler",
        )
        self.start_pod(pod)

    def start_pod(self, pod: dict[str, Any]) -> None:
        """The kubelet: a bound pod starts (or waits for its EBS volume while disconnected)."""
        meta = pod["metadata"]
        status = self.cluster.kubelet_status(pod, meta["namespace"])
        self._write_status(PODS, pod, status)
        if status.get("phase") != "Running":
            return
        node = _spec(pod).get("nodeName", "")
        for container in _spec(pod).get("containers") or []:
            path = f"spec.containers{{{container.get('name')}}}"
            for reason, message in (
                ("Pulled", f'Container image "{container.get("image")}" already present on machine'),
                ("Created", f"Created container {container.get('name')}"),
                ("Started", f"Started container {container.get('name')}"),
            ):
                self.record(pod, reason, message, component="kubelet", field_path=path, host=node)

    # ------------------------------------------------------------------ namespaces

    def _finish_namespace(self, name: str) -> None:
        """The namespace controller: delete everything in it, then the namespace itself."""
        from lifeline_simulator.resources import RESOURCE_TYPES

        with self.store.lock:
            namespace = self.store.find(NAMESPACES, "", name)
            if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
                return
            for rtype in (*RESOURCE_TYPES, *self.cluster.custom_types()):
                if not rtype.namespaced or rtype.plural in ("events",):
                    continue
                for obj in self.store.list(rtype, name).items:
                    with contextlib.suppress(ApiError):
                        self.store.delete(rtype, name, obj["metadata"]["name"])
            self.store.delete(NAMESPACES, "", name)

    # ------------------------------------------------------------------ endpoints

    def _endpoints(self, namespace: str, name: str) -> None:
        service = self.store.find(SERVICES, namespace, name)
        selector = _spec(service).get("selector") if service else None
        if service is None or not selector:
            for rtype, obj_name in ((ENDPOINTS, name),):
                if service is None and self.store.find(rtype, namespace, obj_name) is not None:
                    self.store.delete(rtype, namespace, obj_name)
            if service is None:
                for s in self.store.list(
                    SLICES, namespace, label_selector=f"kubernetes.io/service-name={name}"
                ).items:
                    self.store.delete(SLICES, namespace, s["metadata"]["name"])
            return
        pods = [
            p
            for p in self.store.list(PODS, namespace).items
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and (p.get("status") or {}).get("podIP")
        ]
        pods.sort(key=lambda p: p["metadata"]["name"])

        def address(pod: dict[str, Any]) -> dict[str, Any]:
            meta = pod["metadata"]
            return {
                "ip": pod["status"]["podIP"],
                "nodeName": _spec(pod).get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }

        def target(port: dict[str, Any], pod: dict[str, Any] | None) -> int:
            value = port.get("targetPort", port.get("port"))
            if isinstance(value, int):
                return value
            for container in _spec(pod or {}).get("containers") or []:
                for p in container.get("ports") or []:
                    if p.get("name") == value:
                        return int(p["containerPort"])
            return int(port.get("port") or 0)

        sample = pods[0] if pods else None
        ports = [
            {
                k: v
                for k, v in (
                    ("name", p.get("name")),
                    ("port", target(p, sample)),
                    ("protocol", p.get("protocol", "TCP")),
                )
                if v
            }
            for p in _spec(service).get("ports") or []
        ]
        ready = [address(p) for p in pods if is_ready(p)]
        not_ready = [address(p) for p in pods if not is_ready(p)]
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if subset:
            subset["ports"] = ports
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "labels": dict(service["metadata"].get("labels") or {})},
            "subsets": [subset] if subset else [],
        }
        if not endpoints["subsets"]:
            del endpoints["subsets"]
        existing = self.store.find(ENDPOINTS, namespace, name)
        if existing is None:
            self.store.create(ENDPOINTS, namespace, endpoints)
        elif existing.get("subsets") != endpoints.get("subsets"):
            existing.pop("subsets", None)
            self.store.replace(
                ENDPOINTS, namespace, name, {**existing, **endpoints, "metadata": existing["metadata"]}
            )
        slice_body: dict[str, Any] = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": [pod["status"]["podIP"]],
                    "conditions": {"ready": is_ready(pod), "serving": is_ready(pod), "terminating": False},
                    "nodeName": _spec(pod).get("nodeName"),
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": namespace,
                        "name": pod["metadata"]["name"],
                        "uid": pod["metadata"]["uid"],
                    },
                }
                for pod in pods
            ],
            "ports": ports,
        }
        slices = self.store.list(SLICES, namespace, label_selector=f"kubernetes.io/service-name={name}").items
        if not slices:
            slice_body["metadata"] = {
                "name": f"{name}-{self._suffix()}",
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                "ownerReferences": [{**owner_ref(service), "blockOwnerDeletion": True}],
            }
            self.store.create(SLICES, namespace, slice_body)
        elif (slices[0].get("endpoints"), slices[0].get("ports")) != (
            slice_body["endpoints"],
            slice_body["ports"],
        ):
            self.store.replace(
                SLICES,
                namespace,
                slices[0]["metadata"]["name"],
                {**slice_body, "metadata": slices[0]["metadata"]},
            )

    # ------------------------------------------------------------------ node leases

    def _lease(self, _namespace: str, name: str) -> None:
        node = self.store.find(NODES, "", name)
        lease = self.store.find(LEASES, "kube-node-lease", name)
        if node is None:
            if lease is not None:
                self.store.delete(LEASES, "kube-node-lease", name)
            return
        renew = self.cluster.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if lease is None:
            self.store.create(
                LEASES,
                "kube-node-lease",
                {
                    "metadata": {
                        "name": name,
                        "ownerReferences": [
                            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
                        ],
                    },
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
                },
            )
        elif node_ready(node):
            lease["spec"]["renewTime"] = renew
            self.store.replace(LEASES, "kube-node-lease", name, lease)


def _component(owner: dict[str, Any]) -> str:
    return {
        "ReplicaSet": "replicaset-controller",
        "StatefulSet": "statefulset-controller",
        "DaemonSet": "daemonset-controller",
    }.get(str(owner.get("kind")), "controller-manager")


def _max_unavailable(spec: dict[str, Any], replicas: int) -> int:
    rolling = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(rolling, str) and rolling.endswith("%"):
        return int(int(rolling[:-1]) * replicas / 100)
    return int(rolling)
