"""`SimulatedCluster`: one simulated EKS local cluster (store, PKI, auth, RBAC, CSR signer, HTTPS server)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from lifeline_simulator import crds, csr, defaults, subresources
from lifeline_simulator.api import Api, Route
from lifeline_simulator.authn import DEFAULT_PRINCIPALS, IamPrincipal, Identity
from lifeline_simulator.controllers import Controllers
from lifeline_simulator.errors import ApiError
from lifeline_simulator.manifests import load_manifests
from lifeline_simulator.pki import ClusterCA
from lifeline_simulator.rbac import Attributes, Authorizer, escalation_refusal, install_bootstrap_policy
from lifeline_simulator.resources import BY_GROUP_PLURAL, ResourceType
from lifeline_simulator.server import HttpsServer, server_context
from lifeline_simulator.store import SYSTEM_NAMESPACES, Store, timestamp
from lifeline_simulator.views import version_info

log = logging.getLogger("lifeline.simulator")
Clock = Callable[[], dt.datetime]
EBS_PROVISIONERS = frozenset({"ebs.csi.aws.com", "kubernetes.io/aws-ebs"})
_EBS_WAIT = "waiting for an EBS volume: the EBS API is unreachable while the Outpost is disconnected"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ManualClock:
    """A settable clock for tests: `clock.advance(minutes=61)`."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or utc_now()

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


class SimulatedCluster:
    """A strict simulated Kubernetes API server for one EKS local cluster (see `lifeline_simulator`)."""

    def __init__(
        self,
        name: str = "local-cluster",
        *,
        cluster_uid: str | None = None,
        manifests: Path | str | Iterable[dict[str, Any]] | None = None,
        endpoint_hostname: str | None = None,
        state_dir: Path | str | None = None,
        host: str = "127.0.0.1",
        addresses: Sequence[str] = (),
        port: int = 0,
        kubernetes_version: str = "1.30.9",
        iam_principals: Sequence[IamPrincipal] = DEFAULT_PRINCIPALS,
        aws_secret_lookup: Callable[[str], IamPrincipal | None] | None = None,
        clock: Clock | None = None,
        connected: bool = True,
        serve_loopback_names: bool = True,
    ) -> None:
        self.name = name
        # False: the serving certificate names only `endpoint_hostname` (to test a SAN mismatch).
        self.serve_loopback_names = serve_loopback_names
        self.now: Clock = clock or utc_now
        self.kubernetes_version = kubernetes_version
        self.endpoint_hostname = endpoint_hostname or ""
        self.state_dir = Path(state_dir) if state_dir else None
        self._principals = {p.access_key_id: p for p in iam_principals}
        self._lookup = aws_secret_lookup
        self._connected = connected
        # Every address the API server listens on (same port on each), like a control plane's ENIs.
        self.addresses: tuple[str, ...] = tuple(addresses) or (host,)
        self._host, self._port = self.addresses[0], port
        self._server: HttpsServer | None = None
        self._extra_servers: list[HttpsServer] = []
        self._gc_lock = threading.Lock()
        self.cluster_uid = cluster_uid or self._stored_uid() or str(uuid.uuid4())
        if self.state_dir is not None:
            self.ca = ClusterCA.load_or_create(self.state_dir, name, self.now())
            (self.state_dir / "cluster.json").write_text(
                json.dumps({"name": name, "cluster_uid": self.cluster_uid})
            )
        else:
            self.ca = ClusterCA.generate(name, self.now())
        self.store = Store(self.now)
        self._allocator = defaults.ServiceAllocator()
        self.controllers = Controllers(self)
        self._custom: dict[tuple[str, str, str], ResourceType] = {}
        self.store.listeners.append(self._observe_crds)
        self.controller_identity = Identity(
            "system:kube-controller-manager", ("system:authenticated",), method="x509"
        )
        for namespace in SYSTEM_NAMESPACES:
            self.store.ensure_namespace(namespace)
        install_bootstrap_policy(self.store)
        self.authorizer = Authorizer(self.store)
        self.api = Api(self)
        if manifests is not None:
            self.load(manifests)

    def _stored_uid(self) -> str | None:
        if self.state_dir is None or not (self.state_dir / "cluster.json").exists():
            return None
        return str(json.loads((self.state_dir / "cluster.json").read_text()).get("cluster_uid") or "") or None

    # ------------------------------------------------------------------ lifecycle

    def load(self, manifests: Path | str | Iterable[dict[str, Any]]) -> int:
        """Load manifests (all validated first: ManifestError names the bad document). Returns the count."""
        documents = load_manifests(manifests)
        for rtype, obj in documents:
            self.store.load(rtype, obj)
        return len(documents)

    def start(self) -> SimulatedCluster:
        if self._server is not None:
            return self
        serving_cert, serving_key = self.ca.serving_certificate(
            [self.endpoint_hostname], self.now(), ips=self.addresses, loopback=self.serve_loopback_names
        )
        context = server_context(serving_cert, serving_key, self.ca.pem)
        self._listen(context)
        self.controllers.start()
        log.info("simulated cluster %s serving %s (connected=%s)", self.name, self.url, self._connected)
        return self

    def _listen(self, context: Any) -> None:
        """One server per address, all on one port: a free port of the first address is retried a
        few times when another address already has it taken."""
        for attempt in range(20):
            first = HttpsServer(self.addresses[0], self._port, context, self.api.handle)
            extra: list[HttpsServer] = []
            try:
                for address in self.addresses[1:]:
                    extra.append(HttpsServer(address, first.port, context, self.api.handle))
            except OSError:
                for server in (first, *extra):
                    server.close()
                if self._port or attempt == 19:
                    raise
                continue
            for server in (first, *extra):
                server.start()
            self._server, self._extra_servers = first, extra
            return

    def stop(self) -> None:
        self.controllers.stop()
        for server in self._extra_servers:
            server.stop()
        self._extra_servers = []
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"simulated cluster {self.name} is not started")
        return self._server.port

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The URL EKS would report: the endpoint hostname when there is one, else `url`."""
        if not self.endpoint_hostname:
            return self.url
        return f"https://{self.endpoint_hostname}:{self.port}"

    @property
    def server_address(self) -> str:
        return f"{self._host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        return self.ca.pem

    @property
    def ca_data(self) -> str:
        """The CA as EKS's `certificateAuthority.data` carries it (base64 of the PEM)."""
        return base64.b64encode(self.ca.pem.encode()).decode()

    def version_info(self) -> dict[str, str]:
        return version_info(self.kubernetes_version, dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC))

    # ------------------------------------------------------------------ the disconnect switch

    @property
    def connected(self) -> bool:
        return self._connected

    def disconnect(self) -> None:
        """The Outpost loses its service link: IAM tokens fail, x509 works, EBS pods wait."""
        self._connected = False
        log.info("simulated cluster %s: disconnected", self.name)

    def connect(self) -> None:
        """The link is back: IAM tokens work again and pods waiting for EBS start."""
        self._connected = True
        pods = BY_GROUP_PLURAL[("", "pods")]
        for pod in self.store.list(pods, None).items:
            conditions = (pod.get("status") or {}).get("conditions") or []
            if any(c.get("message") == _EBS_WAIT for c in conditions):
                meta = pod["metadata"]
                pod["status"] = self._running_status(pod)
                self.store.replace(pods, meta["namespace"], meta["name"], pod, subresource="status")
        self.controllers.settle()
        log.info("simulated cluster %s: connected", self.name)

    # ------------------------------------------------------------------ credentials for tests and tools

    def lookup_principal(self, access_key_id: str) -> IamPrincipal | None:
        if self._lookup is not None:
            return self._lookup(access_key_id)
        return self._principals.get(access_key_id)

    def issue_client_certificate(
        self,
        user: str,
        groups: Sequence[str] = (),
        days: float = 1,
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> tuple[str, str]:
        """A client certificate signed by the cluster CA directly (no CSR): (cert PEM, key PEM)."""
        start = not_before or self.now() - dt.timedelta(minutes=1)
        end = not_after or self.now() + dt.timedelta(days=days)
        return self.ca.client_certificate(user, tuple(groups), start, end)

    def write_admin_kubeconfig(
        self,
        path: Path | str,
        *,
        user: str = "kubernetes-admin",
        groups: Sequence[str] = ("system:masters",),
        days: float = 365,
    ) -> Path:
        """An x509 kubeconfig for the cluster creator's identity (system:masters), mode 0600."""
        cert, key = self.issue_client_certificate(user, groups, days)
        cluster: dict[str, Any] = {"server": self.url, "certificate-authority-data": _b64(self.ca.pem)}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": cluster}],
            "users": [
                {
                    "name": f"{user}@{self.name}",
                    "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
                }
            ],
            "contexts": [
                {"name": self.name, "context": {"cluster": self.name, "user": f"{user}@{self.name}"}}
            ],
            "current-context": self.name,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600)
        target.chmod(0o600)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    # ------------------------------------------------------------------ writes with controller behaviour

    def create_object(
        self, rtype: ResourceType, namespace: str, obj: dict[str, Any], identity: Identity
    ) -> dict[str, Any]:
        """POST semantics: admission for CSRs, status reset, a simulated kubelet for pods."""
        self._check_escalation(rtype, namespace, obj, identity)
        if rtype.plural == "certificatesigningrequests":
            obj = csr.admit_create(obj, identity)
        elif "status" in rtype.subresources:
            obj = {k: v for k, v in obj.items() if k != "status"}
        if rtype.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
            obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = (
                obj.get("metadata") or {}
            ).get("name", "")
        if rtype.namespaced:
            ns = self.store.find(BY_GROUP_PLURAL[("", "namespaces")], "", namespace)
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    f'{rtype.plural} "{(obj.get("metadata") or {}).get("name", "")}" is forbidden: '
                    f"unable to create new content in namespace {namespace} because it is being terminated",
                    reason="Forbidden",
                )
        if rtype.plural == "pods":
            # Unbound pods wait for the scheduler; a pod created with a node starts at once.
            if (obj.get("spec") or {}).get("nodeName"):
                obj["status"] = self._pod_status(obj, namespace)
            else:
                obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        if rtype.plural == "customresourcedefinitions":
            obj["status"] = crds.established_status(obj, timestamp(self.now()))
        if rtype.plural == "poddisruptionbudgets":
            pods = self.store.list(BY_GROUP_PLURAL[("", "pods")], namespace).items
            obj["status"] = subresources.pdb_status(obj, pods)
        if rtype.plural == "persistentvolumeclaims":
            obj["status"] = {"phase": "Pending"}
            if self._connected or not self._claim_class_is_ebs(obj):
                size = (
                    ((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "1Gi")
                )
                obj["status"] = {
                    "phase": "Bound",
                    "capacity": {"storage": size},
                    "accessModes": (obj.get("spec") or {}).get("accessModes", []),
                }
        self.apply_defaults(rtype, namespace, obj)
        return self.store.create(rtype, namespace, obj)

    def apply_defaults(
        self, rtype: ResourceType, namespace: str, obj: dict[str, Any], current: dict[str, Any] | None = None
    ) -> None:
        """API defaulting as kube-apiserver does it on decode (see `defaults`)."""
        if rtype.custom:
            return
        if rtype.kind == "Service" and rtype.group == "":
            services = self.store.list(rtype, None).items
            taken_ips = {str((s.get("spec") or {}).get("clusterIP")) for s in services}
            taken_ports = {
                int(p["nodePort"])
                for s in services
                for p in (s.get("spec") or {}).get("ports") or []
                if p.get("nodePort")
            }
            defaults.service(obj, self._allocator, taken_ips, taken_ports, current)
            return
        default = defaults.BY_KIND.get(rtype.kind)
        if default is not None and rtype.group in ("", "apps", "batch"):
            default(obj)

    def _check_escalation(
        self, rtype: ResourceType, namespace: str, obj: dict[str, Any], identity: Identity
    ) -> None:
        """RBAC's escalation prevention: no role or binding grants what its writer could not grant."""
        if rtype.group != "rbac.authorization.k8s.io":
            return
        refusal = escalation_refusal(
            self.authorizer, identity.user, identity.groups, obj, rtype.kind, namespace
        )
        if refusal is not None:
            name = (obj.get("metadata") or {}).get("name", "")
            raise ApiError(403, f'{rtype.plural}.rbac.authorization.k8s.io "{name}" is forbidden: {refusal}')

    def replace_object(self, route: Route, obj: dict[str, Any], identity: Identity) -> dict[str, Any]:
        """PUT semantics, with the CSR approval and status rules."""
        rtype = route.rtype
        if not route.subresource:
            self._check_escalation(rtype, route.namespace, obj, identity)
        if rtype.plural != "certificatesigningrequests":
            if not route.subresource:
                current = self.store.find(rtype, route.namespace, route.name)
                self.apply_defaults(rtype, route.namespace, obj, current)
            return self.store.replace(rtype, route.namespace, route.name, obj, subresource=route.subresource)
        with self.store.lock:
            current = self.store.get(rtype, "", route.name)
            if route.subresource == "approval":
                signer = (current.get("spec") or {}).get("signerName", "")
                domain = signer.split("/")[0] + "/*"
                if not any(
                    self.authorizer.allowed(
                        identity.user,
                        identity.groups,
                        Attributes("approve", csr.GROUP, "signers", name=n),
                    )
                    for n in (signer, domain)
                ):
                    raise ApiError(
                        403,
                        f'certificatesigningrequests.certificates.k8s.io "{route.name}" is forbidden: '
                        f'user not permitted to approve requests with signerName "{signer}"',
                    )
                status = csr.apply_approval(current, obj, self.now())
                updated = self.store.replace(
                    rtype,
                    "",
                    route.name,
                    {"metadata": obj.get("metadata") or {}, "status": status},
                    subresource="approval",
                )
                signed = csr.sign_if_approved(updated, self.ca, self.now())
                if signed is not None:
                    updated = self.store.replace(
                        rtype, "", route.name, {"status": signed}, subresource="status"
                    )
                return updated
            if route.subresource == "status":
                status = csr.apply_status(current, obj)
                return self.store.replace(
                    rtype,
                    "",
                    route.name,
                    {"metadata": obj.get("metadata") or {}, "status": status},
                    subresource="status",
                )
            # The spec is immutable and status only moves through subresources: keep both.
            kept = {**obj, "spec": current.get("spec"), "status": current.get("status")}
            return self.store.replace(rtype, "", route.name, kept)

    def evict_pod(self, namespace: str, name: str) -> None:
        """The eviction API: refused with 429 while a PodDisruptionBudget allows no disruption."""
        pods = BY_GROUP_PLURAL[("", "pods")]
        budgets = BY_GROUP_PLURAL[("policy", "poddisruptionbudgets")]
        with self.store.lock:
            pod = self.store.get(pods, namespace, name)
            labels = (pod.get("metadata") or {}).get("labels") or {}
            in_namespace = self.store.list(pods, namespace).items
            for pdb in self.store.list(budgets, namespace).items:
                if not subresources.matches((pdb.get("spec") or {}).get("selector"), labels):
                    continue
                status = subresources.pdb_status(pdb, in_namespace)
                self.store.replace(
                    budgets, namespace, pdb["metadata"]["name"], {"status": status}, subresource="status"
                )
                if status["disruptionsAllowed"] < 1:
                    raise subresources.eviction_blocked(pdb, status)
            self.store.delete(pods, namespace, name)

    def collect_garbage(self) -> None:
        """The CSR cleaner: decided CSRs go after an hour, pending after a day, expired at once."""
        if not self._gc_lock.acquire(blocking=False):
            return
        try:
            csrs = BY_GROUP_PLURAL[("certificates.k8s.io", "certificatesigningrequests")]
            now = self.now()
            for obj in self.store.list(csrs, None).items:
                if csr.is_garbage(obj, now):
                    with contextlib.suppress(ApiError):
                        self.store.delete(csrs, "", obj["metadata"]["name"])
        finally:
            self._gc_lock.release()

    # ------------------------------------------------------------------ the simulated kubelet

    def _storage_class_is_ebs(self, name: str | None) -> bool:
        classes = BY_GROUP_PLURAL[("storage.k8s.io", "storageclasses")]
        if name:
            sc = self.store.find(classes, "", name)
        else:
            sc = next(
                (
                    s
                    for s in self.store.list(classes, None).items
                    if (s["metadata"].get("annotations") or {}).get(
                        "storageclass.kubernetes.io/is-default-class"
                    )
                    == "true"
                ),
                None,
            )
        return sc is not None and sc.get("provisioner") in EBS_PROVISIONERS

    def _claim_class_is_ebs(self, claim: dict[str, Any]) -> bool:
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            pv = self.store.find(BY_GROUP_PLURAL[("", "persistentvolumes")], "", spec["volumeName"])
            if pv is not None:
                pv_spec = pv.get("spec") or {}
                return (
                    bool(pv_spec.get("awsElasticBlockStore"))
                    or (pv_spec.get("csi") or {}).get("driver") == "ebs.csi.aws.com"
                )
        return self._storage_class_is_ebs(spec.get("storageClassName"))

    def _pod_needs_ebs(self, pod: dict[str, Any], namespace: str) -> bool:
        claims = BY_GROUP_PLURAL[("", "persistentvolumeclaims")]
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if volume.get("awsElasticBlockStore"):
                return True
            template = ((volume.get("ephemeral") or {}).get("volumeClaimTemplate") or {}).get("spec")
            if template is not None and self._storage_class_is_ebs(template.get("storageClassName")):
                return True
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim_name:
                claim = self.store.find(claims, namespace, claim_name)
                if claim is not None and self._claim_class_is_ebs(claim):
                    return True
        return False

    def _running_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        now = timestamp(self.now())
        containers = (pod.get("spec") or {}).get("containers") or []
        ip = f"10.0.{uuid.uuid4().int % 200 + 20}.{uuid.uuid4().int % 250 + 2}"
        return {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ],
        }

    def kubelet_status(self, pod: dict[str, Any], namespace: str) -> dict[str, Any]:
        """What the kubelet reports for a pod bound to a node."""
        status = self._pod_status(pod, namespace)
        node = self.store.find(
            BY_GROUP_PLURAL[("", "nodes")], "", (pod.get("spec") or {}).get("nodeName", "")
        )
        if node is not None:
            ip = next(
                (
                    a.get("address")
                    for a in (node.get("status") or {}).get("addresses") or []
                    if a.get("type") == "InternalIP"
                ),
                None,
            )
            if ip:
                status["hostIP"] = ip
                status["hostIPs"] = [{"ip": ip}]
        status["qosClass"] = "BestEffort"
        return status

    def custom_types(self) -> list[ResourceType]:
        """Resource types served from CustomResourceDefinitions."""
        return list(self._custom.values())

    def find_custom(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._custom.get((group, version, plural))

    def _observe_crds(self, rtype: ResourceType, kind: str, obj: dict[str, Any], _loaded: bool) -> None:
        if rtype.plural != "customresourcedefinitions":
            return
        name = (obj.get("metadata") or {}).get("name", "")
        self._custom = {k: v for k, v in self._custom.items() if f"{v.plural}.{v.group}" != name}
        if kind != "DELETED":
            for served in crds.resource_types(obj):
                self._custom[(served.group, served.version, served.plural)] = served

    def delete_object(self, route: Route) -> dict[str, Any]:
        """DELETE semantics: a namespace goes through Terminating; the rest is removed at once."""
        rtype = route.rtype
        if rtype.plural == "namespaces" and rtype.group == "":
            if route.name in SYSTEM_NAMESPACES:
                raise ApiError(
                    403,
                    f'namespaces "{route.name}" is forbidden: this namespace may not be deleted',
                    reason="Forbidden",
                )
            return self.store.mark_deleting(rtype, "", route.name, {"phase": "Terminating"})
        return self.store.delete(rtype, route.namespace, route.name)

    def _pod_status(self, pod: dict[str, Any], namespace: str) -> dict[str, Any]:
        if not self._connected and self._pod_needs_ebs(pod, namespace):
            containers = (pod.get("spec") or {}).get("containers") or []
            return {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "ContainersNotReady",
                        "message": _EBS_WAIT,
                    },
                ],
                "containerStatuses": [
                    {
                        "name": c.get("name", ""),
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "started": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                    for c in containers
                ],
            }
        return self._running_status(pod)
