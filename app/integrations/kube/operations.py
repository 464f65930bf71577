"""What the credentials service needs from a cluster, as a protocol with our own dataclasses, and
its implementation over `app.integrations.kube.client` with Lifeline's issuer identity.

The issuer is the operator's admin kubeconfig entry for the cluster's endpoint when configured
(`LIFELINE_ISSUER_KUBECONFIG`, x509 or token: works while IAM is down), otherwise an EKS IAM token.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from app.integrations import eks_token
from app.integrations.aws import AwsClients
from app.integrations.kube import client as kube


class ClusterApiError(RuntimeError):
    """A cluster call failed; the message is for the operator (status is the HTTP code, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IssuerUnavailable(ClusterApiError):
    """Lifeline has no working identity to act on this cluster with."""


@dataclass(frozen=True)
class CsrCondition:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class CsrState:
    name: str
    certificate_pem: str | None
    conditions: tuple[CsrCondition, ...]

    def condition(self, kind: str) -> CsrCondition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class WhoAmI:
    username: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class BindingState:
    name: str
    cluster_role: str
    users: tuple[str, ...]
    groups: tuple[str, ...]
    labels: dict[str, str]


class ClusterApi(Protocol):
    """The calls issuing a credential makes, with Lifeline's issuer identity or the new credential."""

    def server_version(self) -> str: ...

    def whoami(self) -> WhoAmI: ...

    def create_csr(
        self,
        name: str,
        request_pem: str,
        *,
        expiration_seconds: int,
        usages: tuple[str, ...],
        labels: dict[str, str],
    ) -> None: ...

    def approve_csr(self, name: str, *, reason: str, message: str) -> None: ...

    def read_csr(self, name: str) -> CsrState | None: ...

    def delete_csr(self, name: str) -> bool: ...

    def create_binding(self, name: str, *, cluster_role: str, user: str, labels: dict[str, str]) -> None: ...

    def read_binding(self, name: str) -> BindingState | None: ...

    def delete_binding(self, name: str) -> bool: ...

    def cluster_roles(self) -> list[str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClusterTarget:
    """The cached facts needed to reach a cluster (no AWS call involved)."""

    name: str
    region: str
    endpoint: str
    certificate_authority: str  # base64 PEM as DescribeCluster gives it (a PEM is accepted too)
    cluster_uid: str | None = None

    @property
    def ca_pem(self) -> str:
        text = self.certificate_authority.strip()
        return text + "\n" if text.startswith("-----BEGIN") else base64.b64decode(text).decode()


@dataclass(frozen=True)
class ClusterAccess:
    """How the service reaches a cluster: as Lifeline's issuer, or as a credential (cert and key)."""

    issuer: Callable[[ClusterTarget], ClusterApi]
    as_client: Callable[[ClusterTarget, str, bytes], ClusterApi]


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except kube.KubeUnauthorized as exc:
        raise ClusterApiError(f"{action}: the cluster did not accept the credential ({exc})", 401) from None
    except kube.KubeUnreachable as exc:
        raise ClusterApiError(f"{action}: the API server is unreachable ({exc})", 0) from None
    except kube.KubeError as exc:
        raise ClusterApiError(f"{action}: {exc}", exc.status) from None


class KubeClusterApi:
    """`ClusterApi` over the Kubernetes adapter (`app.integrations.kube.client`)."""

    def __init__(self, connection: kube.KubeConnection, description: str) -> None:
        self._conn = connection
        self.description = description

    def server_version(self) -> str:
        with _translated("GET /version"):
            return self._conn.version().git_version

    def whoami(self) -> WhoAmI:
        with _translated("SelfSubjectReview"):
            who = self._conn.whoami()
        return WhoAmI(who.username, who.groups)

    def create_csr(
        self,
        name: str,
        request_pem: str,
        *,
        expiration_seconds: int,
        usages: tuple[str, ...],
        labels: dict[str, str],
    ) -> None:
        with _translated(f"creating CSR {name}"):
            self._conn.create_csr(
                name, request_pem, usages=usages, expiration_seconds=expiration_seconds, labels=labels
            )

    def approve_csr(self, name: str, *, reason: str, message: str) -> None:
        with _translated(f"approving CSR {name}"):
            self._conn.approve_csr(name, reason=reason, message=message)

    def read_csr(self, name: str) -> CsrState | None:
        try:
            with _translated(f"reading CSR {name}"):
                info = self._conn.get_csr(name)
        except ClusterApiError as exc:
            if exc.status == 404:
                return None
            raise
        conditions = tuple(
            CsrCondition(c.type, c.reason, c.message) for c in info.conditions if c.status == "True"
        )
        return CsrState(info.name, info.certificate_pem, conditions)

    def delete_csr(self, name: str) -> bool:
        with _translated(f"deleting CSR {name}"):
            return self._conn.delete_csr(name)

    def create_binding(self, name: str, *, cluster_role: str, user: str, labels: dict[str, str]) -> None:
        with _translated(f"creating ClusterRoleBinding {name}"):
            self._conn.create_cluster_role_binding(
                name,
                cluster_role,
                users=[user],
                labels=labels,
                annotations={"lifeline.outpost/purpose": "emergency access issued by Outpost Lifeline"},
            )

    def read_binding(self, name: str) -> BindingState | None:
        with _translated(f"reading ClusterRoleBinding {name}"):
            info = self._conn.get_cluster_role_binding(name)
        if info is None:
            return None
        return BindingState(
            name=info.name,
            cluster_role=info.role_name,
            users=tuple(s.name for s in info.subjects if s.kind == "User"),
            groups=tuple(s.name for s in info.subjects if s.kind == "Group"),
            labels=dict(info.labels),
        )

    def delete_binding(self, name: str) -> bool:
        with _translated(f"deleting ClusterRoleBinding {name}"):
            return self._conn.delete_cluster_role_binding(name)

    def cluster_roles(self) -> list[str]:
        with _translated("listing ClusterRoles"):
            items = self._conn.iter_objects("rbac.authorization.k8s.io/v1", "clusterroles")
            return sorted(str((obj.get("metadata") or {}).get("name", "")) for obj in items)

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class IssuerKubeconfigEntry:
    server: str
    ca_pem: str | None
    auth: kube.KubeAuth
    tls_server_name: str | None


def _b64_or_file(entry: dict[str, Any], data_key: str, file_key: str, base: Path) -> str | None:
    if entry.get(data_key):
        return base64.b64decode(entry[data_key]).decode()
    if entry.get(file_key):
        path = Path(entry[file_key])
        return (path if path.is_absolute() else base / path).read_text()
    return None


def issuer_kubeconfig_entries(path: Path) -> list[IssuerKubeconfigEntry]:
    """The (server, credential) pairs of every context in an operator-provided kubeconfig."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IssuerUnavailable(f"LIFELINE_ISSUER_KUBECONFIG {path} cannot be read: {exc}") from None
    clusters = {c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in config.get("users") or []}
    entries = []
    for context in config.get("contexts") or []:
        ctx = context.get("context") or {}
        cluster, user = clusters.get(ctx.get("cluster")), users.get(ctx.get("user"))
        if not cluster or user is None or not cluster.get("server"):
            continue
        base = path.parent
        token = user.get("token")
        cert = _b64_or_file(user, "client-certificate-data", "client-certificate", base)
        key = _b64_or_file(user, "client-key-data", "client-key", base)
        if token:
            auth = kube.KubeAuth.bearer(str(token))
        elif cert and key:
            auth = kube.KubeAuth.x509(cert, key)
        else:
            continue
        entries.append(
            IssuerKubeconfigEntry(
                server=str(cluster["server"]).rstrip("/"),
                ca_pem=_b64_or_file(cluster, "certificate-authority-data", "certificate-authority", base),
                auth=auth,
                tls_server_name=cluster.get("tls-server-name"),
            )
        )
    return entries


def cluster_access(
    *,
    clients: AwsClients,
    issuer_kubeconfig: Path | None,
    timeout: float = 10.0,
) -> ClusterAccess:
    """Lifeline's issuer: the operator's kubeconfig entry for the cluster's endpoint when there is one
    (works while IAM is down), otherwise an EKS IAM token for the cluster id (needs STS reachable)."""

    def issuer(target: ClusterTarget) -> ClusterApi:
        if issuer_kubeconfig is not None:
            for entry in issuer_kubeconfig_entries(issuer_kubeconfig):
                if entry.server == target.endpoint.rstrip("/"):
                    connection = kube.connect(
                        target.endpoint,
                        entry.ca_pem or target.ca_pem,
                        entry.auth,
                        tls_server_name=entry.tls_server_name,
                        timeout=timeout,
                    )
                    return KubeClusterApi(connection, "issuer kubeconfig")
        try:
            token = eks_token.build_token(clients, target.region, target.cluster_uid or target.name)
        except Exception as exc:
            raise IssuerUnavailable(f"no EKS IAM token for {target.name}: {exc}") from None
        connection = kube.connect(
            target.endpoint, target.ca_pem, kube.KubeAuth.bearer(token.token), timeout=timeout
        )
        return _IamIssuer(connection, "EKS IAM token")

    def as_client(target: ClusterTarget, cert_pem: str, key_pem: bytes) -> ClusterApi:
        auth = kube.KubeAuth.x509(cert_pem, key_pem.decode())
        return KubeClusterApi(
            kube.connect(target.endpoint, target.ca_pem, auth, timeout=timeout), "credential"
        )

    return ClusterAccess(issuer=issuer, as_client=as_client)


class _IamIssuer(KubeClusterApi):
    """An IAM-token issuer: a 401 most likely means the Outpost is disconnected from its Region."""

    def create_csr(
        self,
        name: str,
        request_pem: str,
        *,
        expiration_seconds: int,
        usages: tuple[str, ...],
        labels: dict[str, str],
    ) -> None:
        try:
            super().create_csr(
                name, request_pem, expiration_seconds=expiration_seconds, usages=usages, labels=labels
            )
        except ClusterApiError as exc:
            if exc.status == 401:
                raise IssuerUnavailable(
                    f"{exc}. IAM authentication fails while the Outpost is disconnected from its Region: "
                    "set LIFELINE_ISSUER_KUBECONFIG to an admin kubeconfig to issue during a disconnect",
                    401,
                ) from None
            raise
