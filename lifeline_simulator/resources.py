"""The resource types the simulator serves, their discovery documents and `kubectl get` table columns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

READ = ["get", "list", "watch"]
CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    value: Callable[[dict[str, Any]], Any]
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(CRUD)
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(default=())
    custom: bool = False  # served from a CustomResourceDefinition

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _node_status(obj: dict[str, Any]) -> str:
    for cond in _status(obj).get("conditions") or []:
        if cond.get("type") == "Ready":
            state = "Ready" if cond.get("status") == "True" else "NotReady"
            break
    else:
        state = "Unknown"
    if _spec(obj).get("unschedulable"):
        state += ",SchedulingDisabled"
    return state


def _node_roles(obj: dict[str, Any]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix) :] for k in (_meta(obj).get("labels") or {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = _status(obj).get("containerStatuses") or []
    total = len(_spec(obj).get("containers") or []) or len(statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_restarts(obj: dict[str, Any]) -> int:
    return sum(int(s.get("restartCount") or 0) for s in _status(obj).get("containerStatuses") or [])


def _pod_phase(obj: dict[str, Any]) -> str:
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    for s in _status(obj).get("containerStatuses") or []:
        state = s.get("state") or {}
        # As the server's printer: a waiting or terminated container's reason (`Completed`) wins.
        for key in ("waiting", "terminated"):
            if (state.get(key) or {}).get("reason"):
                return str(state[key]["reason"])
    return str(_status(obj).get("phase") or "Pending")


def _ready_of(obj: dict[str, Any], desired_key: str = "replicas") -> str:
    return f"{_status(obj).get('readyReplicas') or 0}/{_spec(obj).get(desired_key) or 0}"


def _ports(obj: dict[str, Any]) -> str:
    ports = _spec(obj).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _join(values: list[Any] | None) -> str:
    return ",".join(str(v) for v in values or []) or "<none>"


def _role_ref(obj: dict[str, Any]) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def _csr_condition(obj: dict[str, Any]) -> str:
    types = [c.get("type") for c in _status(obj).get("conditions") or []]
    if not types:
        return "Pending"
    label = ",".join(str(t) for t in types)
    if "Approved" in types and not _status(obj).get("certificate"):
        return label
    if _status(obj).get("certificate"):
        label += ",Issued"
    return label


def _age(obj: dict[str, Any]) -> Any:
    return _meta(obj).get("creationTimestamp")


def _event_last_seen(obj: dict[str, Any]) -> Any:
    return obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")


def _event_object(obj: dict[str, Any]) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _endpoints(obj: dict[str, Any]) -> str:
    out = [
        f"{a.get('ip')}:{p.get('port')}"
        for subset in obj.get("subsets") or []
        for a in subset.get("addresses") or []
        for p in subset.get("ports") or [{"port": ""}]
    ]
    if len(out) > 3:
        return ",".join(out[:3]) + f" + {len(out) - 3} more..."
    return ",".join(out) or "<none>"


NAME = Column("Name", "string", "Name must be unique within a namespace.", lambda o: _meta(o).get("name"))
AGE = Column("Age", "string", "CreationTimestamp", _age)


def _cols(*columns: Column) -> tuple[Column, ...]:
    return (NAME, *columns)


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources=("status",),
        columns=_cols(Column("Status", "string", "Phase", lambda o: _status(o).get("phase", "Active")), AGE),
    ),
    ResourceType(
        "",
        "v1",
        "Node",
        "nodes",
        False,
        ("no",),
        subresources=("status",),
        columns=_cols(
            Column("Status", "string", "Node status", _node_status),
            Column("Roles", "string", "Node roles", _node_roles),
            AGE,
            Column(
                "Version",
                "string",
                "Kubelet version",
                lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", ""),
            ),
            Column(
                "Internal-IP",
                "string",
                "Internal IP",
                lambda o: next(
                    (
                        a.get("address")
                        for a in _status(o).get("addresses") or []
                        if a.get("type") == "InternalIP"
                    ),
                    "<none>",
                ),
                priority=1,
            ),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        ("po",),
        subresources=("status", "eviction", "log", "exec", "attach", "portforward", "binding"),
        categories=("all",),
        columns=_cols(
            Column("Ready", "string", "Ready containers", _pod_ready),
            Column("Status", "string", "Pod status", _pod_phase),
            Column("Restarts", "string", "Restarts", _pod_restarts),
            AGE,
            Column("IP", "string", "Pod IP", lambda o: _status(o).get("podIP") or "<none>", priority=1),
            Column("Node", "string", "Node", lambda o: _spec(o).get("nodeName") or "<none>", priority=1),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "Service",
        "services",
        True,
        ("svc",),
        subresources=("status",),
        categories=("all",),
        columns=_cols(
            Column("Type", "string", "Type", lambda o: _spec(o).get("type", "ClusterIP")),
            Column("Cluster-IP", "string", "Cluster IP", lambda o: _spec(o).get("clusterIP") or "<none>"),
            Column(
                "External-IP",
                "string",
                "External IP",
                lambda o: _join(
                    [
                        i.get("hostname") or i.get("ip")
                        for i in (_status(o).get("loadBalancer") or {}).get("ingress") or []
                    ]
                ),
            ),
            Column("Port(s)", "string", "Ports", _ports),
            AGE,
        ),
    ),
    ResourceType(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        True,
        ("cm",),
        columns=_cols(Column("Data", "integer", "Keys", lambda o: len(o.get("data") or {})), AGE),
    ),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), columns=_cols(AGE)),
    ResourceType(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        True,
        ("pvc",),
        subresources=("status",),
        columns=_cols(
            Column("Status", "string", "Phase", lambda o: _status(o).get("phase", "Pending")),
            Column("Volume", "string", "Volume", lambda o: _spec(o).get("volumeName", "")),
            Column(
                "Capacity",
                "string",
                "Capacity",
                lambda o: (_status(o).get("capacity") or {}).get("storage", ""),
            ),
            Column("Access Modes", "string", "Modes", lambda o: _join(_status(o).get("accessModes"))),
            Column(
                "StorageClass", "string", "Class", lambda o: _spec(o).get("storageClassName") or "<unset>"
            ),
            AGE,
        ),
    ),
    ResourceType(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        False,
        ("pv",),
        subresources=("status",),
        columns=_cols(
            Column(
                "Capacity",
                "string",
                "Capacity",
                lambda o: (_spec(o).get("capacity") or {}).get("storage", ""),
            ),
            Column("Access Modes", "string", "Modes", lambda o: _join(_spec(o).get("accessModes"))),
            Column(
                "Reclaim Policy",
                "string",
                "Policy",
                lambda o: _spec(o).get("persistentVolumeReclaimPolicy", ""),
            ),
            Column("Status", "string", "Phase", lambda o: _status(o).get("phase", "Available")),
            Column(
                "Claim",
                "string",
                "Claim",
                lambda o: "/".join(
                    str(v)
                    for v in ((_spec(o).get("claimRef") or {}).get(k) for k in ("namespace", "name"))
                    if v
                ),
            ),
            Column("StorageClass", "string", "Class", lambda o: _spec(o).get("storageClassName", "")),
            AGE,
        ),
    ),
    ResourceType(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        ("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
        columns=_cols(
            Column("Ready", "string", "Ready", _ready_of),
            Column("Up-to-date", "string", "Updated", lambda o: _status(o).get("updatedReplicas") or 0),
            Column("Available", "string", "Available", lambda o: _status(o).get("availableReplicas") or 0),
            AGE,
        ),
    ),
    ResourceType(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        True,
        ("sts",),
        subresources=("status", "scale"),
        categories=("all",),
        columns=_cols(Column("Ready", "string", "Ready", _ready_of), AGE),
    ),
    ResourceType(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        True,
        ("ds",),
        subresources=("status",),
        categories=("all",),
        columns=_cols(
            Column("Desired", "integer", "Desired", lambda o: _status(o).get("desiredNumberScheduled") or 0),
            Column("Current", "integer", "Current", lambda o: _status(o).get("currentNumberScheduled") or 0),
            Column("Ready", "integer", "Ready", lambda o: _status(o).get("numberReady") or 0),
            Column(
                "Up-to-date", "integer", "Updated", lambda o: _status(o).get("updatedNumberScheduled") or 0
            ),
            Column("Available", "integer", "Available", lambda o: _status(o).get("numberAvailable") or 0),
            AGE,
        ),
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        subresources=("status",),
        categories=("all",),
        columns=_cols(
            Column(
                "Reference",
                "string",
                "Target",
                lambda o: "{}/{}".format(
                    (_spec(o).get("scaleTargetRef") or {}).get("kind"),
                    (_spec(o).get("scaleTargetRef") or {}).get("name"),
                ),
            ),
            Column("MinPods", "integer", "Min", lambda o: _spec(o).get("minReplicas", 1)),
            Column("MaxPods", "integer", "Max", lambda o: _spec(o).get("maxReplicas")),
            Column("Replicas", "integer", "Current", lambda o: _status(o).get("currentReplicas") or 0),
            AGE,
        ),
    ),
    ResourceType(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        False,
        ("sc",),
        columns=_cols(
            Column("Provisioner", "string", "Provisioner", lambda o: o.get("provisioner", "")),
            Column("ReclaimPolicy", "string", "Policy", lambda o: o.get("reclaimPolicy", "Delete")),
            Column("VolumeBindingMode", "string", "Mode", lambda o: o.get("volumeBindingMode", "Immediate")),
            AGE,
        ),
    ),
    ResourceType(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        False,
        columns=_cols(
            Column("AttachRequired", "boolean", "Attach", lambda o: _spec(o).get("attachRequired", True)), AGE
        ),
    ),
    ResourceType(
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshotClass",
        "volumesnapshotclasses",
        False,
        ("vsclass", "vsclasses"),
        columns=_cols(
            Column("Driver", "string", "Driver", lambda o: o.get("driver", "")),
            Column("DeletionPolicy", "string", "Policy", lambda o: o.get("deletionPolicy", "")),
            AGE,
        ),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        True,
        ("ing",),
        subresources=("status",),
        columns=_cols(
            Column("Class", "string", "Class", lambda o: _spec(o).get("ingressClassName") or "<none>"),
            Column(
                "Hosts",
                "string",
                "Hosts",
                lambda o: _join([r.get("host") for r in _spec(o).get("rules") or []]),
            ),
            Column(
                "Address",
                "string",
                "Address",
                lambda o: _join(
                    [
                        i.get("hostname") or i.get("ip")
                        for i in (_status(o).get("loadBalancer") or {}).get("ingress") or []
                    ]
                ),
            ),
            Column("Ports", "string", "Ports", lambda o: "80, 443" if _spec(o).get("tls") else "80"),
            AGE,
        ),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        False,
        columns=_cols(
            Column("Controller", "string", "Controller", lambda o: _spec(o).get("controller", "")), AGE
        ),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, columns=_cols(AGE)),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        False,
        columns=_cols(Column("Role", "string", "Role", _role_ref), AGE),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True, columns=_cols(AGE)),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        True,
        columns=_cols(Column("Role", "string", "Role", _role_ref), AGE),
    ),
    ResourceType(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        False,
        ("csr",),
        subresources=("approval", "status"),
        columns=_cols(
            AGE,
            Column("SignerName", "string", "Signer", lambda o: _spec(o).get("signerName", "")),
            Column("Requestor", "string", "Requestor", lambda o: _spec(o).get("username", "")),
            Column(
                "RequestedDuration",
                "string",
                "Duration",
                lambda o: (
                    f"{_spec(o)['expirationSeconds'] // 60}m"
                    if _spec(o).get("expirationSeconds")
                    else "<none>"
                ),
            ),
            Column("Condition", "string", "Condition", _csr_condition),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "Secret",
        "secrets",
        True,
        columns=_cols(
            Column("Type", "string", "Type", lambda o: o.get("type", "Opaque")),
            Column("Data", "integer", "Keys", lambda o: len(o.get("data") or {})),
            AGE,
        ),
    ),
    ResourceType(
        "",
        "v1",
        "Event",
        "events",
        True,
        ("ev",),
        columns=(
            Column("Last Seen", "string", "Last seen", _event_last_seen, format="date-time-ago"),
            Column("Type", "string", "Type", lambda o: o.get("type", "")),
            Column("Reason", "string", "Reason", lambda o: o.get("reason", "")),
            Column("Object", "string", "Object", _event_object),
            Column("Message", "string", "Message", lambda o: o.get("message", "")),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        True,
        ("ep",),
        columns=_cols(Column("Endpoints", "string", "Endpoints", _endpoints), AGE),
    ),
    ResourceType(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        True,
        columns=_cols(
            Column("AddressType", "string", "Address type", lambda o: o.get("addressType", "")),
            Column(
                "Ports",
                "string",
                "Ports",
                lambda o: ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>",
            ),
            Column(
                "Endpoints",
                "string",
                "Endpoints",
                lambda o: (
                    ",".join(a for e in o.get("endpoints") or [] for a in e.get("addresses") or [])
                    or "<unset>"
                ),
            ),
            AGE,
        ),
    ),
    ResourceType(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        True,
        columns=_cols(
            Column("Holder", "string", "Holder", lambda o: _spec(o).get("holderIdentity", "")), AGE
        ),
    ),
    ResourceType(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        True,
        ("rs",),
        subresources=("status", "scale"),
        categories=("all",),
        columns=_cols(
            Column("Desired", "integer", "Desired", lambda o: _spec(o).get("replicas", 1)),
            Column("Current", "integer", "Current", lambda o: _status(o).get("replicas") or 0),
            Column("Ready", "integer", "Ready", lambda o: _status(o).get("readyReplicas") or 0),
            AGE,
        ),
    ),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        ("pdb",),
        subresources=("status",),
        columns=_cols(
            Column("Min Available", "string", "Min", lambda o: _spec(o).get("minAvailable", "N/A")),
            Column("Max Unavailable", "string", "Max", lambda o: _spec(o).get("maxUnavailable", "N/A")),
            Column(
                "Allowed Disruptions",
                "integer",
                "Allowed",
                lambda o: _status(o).get("disruptionsAllowed") or 0,
            ),
            AGE,
        ),
    ),
    ResourceType(
        "batch",
        "v1",
        "Job",
        "jobs",
        True,
        subresources=("status",),
        categories=("all",),
        columns=_cols(
            Column(
                "Completions",
                "string",
                "Completions",
                lambda o: f"{_status(o).get('succeeded') or 0}/{_spec(o).get('completions', 1)}",
            ),
            AGE,
        ),
    ),
    ResourceType(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        True,
        ("cj",),
        subresources=("status",),
        categories=("all",),
        columns=_cols(
            Column("Schedule", "string", "Schedule", lambda o: _spec(o).get("schedule", "")),
            Column("Suspend", "boolean", "Suspend", lambda o: bool(_spec(o).get("suspend"))),
            Column("Active", "integer", "Active", lambda o: len(_status(o).get("active") or [])),
            Column(
                "Last Schedule",
                "string",
                "Last",
                lambda o: _status(o).get("lastScheduleTime") or "<none>",
            ),
            AGE,
        ),
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        subresources=("status",),
        categories=("api-extensions",),
        columns=_cols(Column("Created At", "date", "Creation time", _age)),
    ),
    ResourceType(
        "authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=("create",),
    ),
    # Asks about someone else (spec.user, spec.groups): needs `create subjectaccessreviews` itself.
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        verbs=("create",),
    ),
)

SUBRESOURCE_DISCOVERY: dict[str, tuple[str, list[str]]] = {
    "scale": ("Scale", ["get", "patch", "update"]),
    "eviction": ("Eviction", ["create"]),
    "log": ("Pod", ["get"]),
    "exec": ("PodExecOptions", ["create", "get"]),
    "attach": ("PodAttachOptions", ["create", "get"]),
    "portforward": ("PodPortForwardOptions", ["create", "get"]),
    "binding": ("Binding", ["create"]),
}

SUBRESOURCE_GROUP_VERSION = {"scale": ("autoscaling", "v1"), "eviction": ("policy", "v1")}

# Review kinds are virtual: created and answered, never stored.
VIRTUAL = frozenset(
    {"selfsubjectreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"}
)

BY_GROUP_PLURAL: dict[tuple[str, str], ResourceType] = {(r.group, r.plural): r for r in RESOURCE_TYPES}
BY_API_VERSION_KIND: dict[tuple[str, str], ResourceType] = {
    (r.api_version, r.kind): r for r in RESOURCE_TYPES
}


def group_versions() -> dict[str, list[str]]:
    """Group name -> served versions, in a stable order (core group is "")."""
    out: dict[str, list[str]] = {}
    for r in RESOURCE_TYPES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def find(group: str, version: str, plural: str) -> ResourceType | None:
    rtype = BY_GROUP_PLURAL.get((group, plural))
    if rtype is None or rtype.version != version:
        return None
    return rtype


def api_resource_list(group: str, version: str) -> dict[str, Any]:
    """The `APIResourceList` for one group/version, as kubectl and client-go discovery read it."""
    resources: list[dict[str, Any]] = []
    for r in RESOURCE_TYPES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            kind, sub_verbs = SUBRESOURCE_DISCOVERY.get(sub, (r.kind, ["get", "patch", "update"]))
            entry = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
            }
            if sub in SUBRESOURCE_GROUP_VERSION:  # kubectl drain looks for pods/eviction in policy/v1
                entry["group"], entry["version"] = SUBRESOURCE_GROUP_VERSION[sub]
            resources.append(entry | {"verbs": sub_verbs})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
