"""What the credentials service needs from a cluster: the `ClusterApi` protocol over the adapter's
types, and its implementation over `app.integrations.kube.client` as Lifeline's issuer or as a
credential.

The issuer identity is the one choice of `app.integrations.kube.identity`: an EKS IAM token first,
else the operator's admin kubeconfig entry for the cluster's endpoint (`LIFELINE_ISSUER_KUBECONFIG`,
x509 or token), which keeps working while IAM is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.integrations.aws import AwsClients
from app.integrations.kube import client as kube
from app.integrations.kube.identity import IAM, IAM_SOURCE, Permission, choose_identity, token_cache
from app.integrations.kube.kubeconfig import KubeconfigError, read_kubeconfig
from app.integrations.kube.types import (
    ClusterRoleBindingInfo,
    ClusterTarget,
    CsrInfo,
    Identity,
    KubeAuth,
    UserIdentity,
)

# ClusterTarget is re-exported: the service reaches the protocol and its input through one import.
__all__ = [
    "ClusterAccess",
    "ClusterApi",
    "ClusterApiError",
    "ClusterTarget",
    "IssuerUnavailable",
    "KubeClusterApi",
    "cluster_access",
]

# What the issuer does: without these an identity is passed over for the next one.
ISSUER_NEEDS: tuple[Permission, ...] = (
    ("create", "certificatesigningrequests", "certificates.k8s.io"),
    ("create", "clusterrolebindings", "rbac.authorization.k8s.io"),
)
DISCONNECT_HINT = (
    "IAM authentication fails while the Outpost is disconnected from its Region: set "
    "LIFELINE_ISSUER_KUBECONFIG to an admin kubeconfig to issue during a disconnect"
)


class ClusterApiError(RuntimeError):
    """A cluster call failed; the message is for the operator (status is the HTTP code, if any)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IssuerUnavailable(ClusterApiError):
    """Lifeline has no working identity to act on this cluster with."""


class ClusterApi(Protocol):
    """The calls issuing a credential makes, with Lifeline's issuer identity or the new credential."""

    def server_version(self) -> str: ...

    def whoami(self) -> UserIdentity: ...

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

    def read_csr(self, name: str) -> CsrInfo | None: ...

    def delete_csr(self, name: str) -> bool: ...

    def create_binding(self, name: str, *, cluster_role: str, user: str, labels: dict[str, str]) -> None: ...

    def read_binding(self, name: str) -> ClusterRoleBindingInfo | None: ...

    def delete_binding(self, name: str) -> bool: ...

    def cluster_roles(self) -> list[str]: ...

    def labelled(self, kind: str, selector: str) -> list[str]: ...

    def close(self) -> None: ...


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

    def whoami(self) -> UserIdentity:
        with _translated("SelfSubjectReview"):
            return self._conn.whoami()

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

    def read_csr(self, name: str) -> CsrInfo | None:
        try:
            with _translated(f"reading CSR {name}"):
                return self._conn.get_csr(name)
        except ClusterApiError as exc:
            if exc.status == 404:
                return None
            raise

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

    def read_binding(self, name: str) -> ClusterRoleBindingInfo | None:
        with _translated(f"reading ClusterRoleBinding {name}"):
            return self._conn.get_cluster_role_binding(name)

    def delete_binding(self, name: str) -> bool:
        with _translated(f"deleting ClusterRoleBinding {name}"):
            return self._conn.delete_cluster_role_binding(name)

    def cluster_roles(self) -> list[str]:
        with _translated("listing ClusterRoles"):
            items = self._conn.iter_objects("rbac.authorization.k8s.io/v1", "clusterroles")
            return sorted(str((obj.get("metadata") or {}).get("name", "")) for obj in items)

    def labelled(self, kind: str, selector: str) -> list[str]:
        """Names of the CSRs (`kind="csr"`) or ClusterRoleBindings (`"binding"`) matching a label selector."""
        api_version, plural = {
            "csr": ("certificates.k8s.io/v1", "certificatesigningrequests"),
            "binding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
        }[kind]
        with _translated(f"listing {plural} labelled {selector}"):
            items = self._conn.iter_objects(api_version, plural, label_selector=selector)
            return sorted(str((obj.get("metadata") or {}).get("name", "")) for obj in items)

    def close(self) -> None:
        self._conn.close()


def _issuer_entry(path: Path | None, endpoint: str) -> tuple[Identity | None, str]:
    """The issuer kubeconfig's context for `endpoint`, or why there is none."""
    if path is None:
        return None, "LIFELINE_ISSUER_KUBECONFIG is not set"
    try:
        entry = read_kubeconfig(path).for_server(endpoint)
    except KubeconfigError as exc:
        return None, f"LIFELINE_ISSUER_KUBECONFIG {exc}"
    if entry is None:
        return None, f"LIFELINE_ISSUER_KUBECONFIG {path} has no context for {endpoint}"
    return entry, ""


def cluster_access(
    *,
    clients: AwsClients,
    issuer_kubeconfig: Path | None,
    timeout: float = 10.0,
) -> ClusterAccess:
    """Lifeline's issuer (the identity choice: EKS IAM token, else the issuer kubeconfig's entry for
    the cluster's endpoint), and connections as a credential."""

    def issuer(target: ClusterTarget) -> ClusterApi:
        entry, missing = _issuer_entry(issuer_kubeconfig, target.endpoint)
        choice = choose_identity(
            target,
            tokens=token_cache(clients),
            x509=entry,
            x509_missing=missing,
            timeout=timeout,
            requires=ISSUER_NEEDS,
        )
        if choice.connection is None:
            message = f"EKS IAM token: {choice.iam_error}; {choice.x509_error}"
            raise IssuerUnavailable(message if entry else f"{message}. {DISCONNECT_HINT}")
        description = IAM_SOURCE if choice.path == IAM else "issuer kubeconfig"
        return KubeClusterApi(choice.connection, description)

    def as_client(target: ClusterTarget, cert_pem: str, key_pem: bytes) -> ClusterApi:
        auth = KubeAuth.x509(cert_pem, key_pem.decode())
        return KubeClusterApi(
            kube.connect(target.endpoint, target.ca_pem, auth, timeout=timeout), "credential"
        )

    return ClusterAccess(issuer=issuer, as_client=as_client)
