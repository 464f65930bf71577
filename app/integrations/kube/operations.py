"""What the credentials service needs from a cluster: the `ClusterApi` protocol over the adapter's
types, and its implementation over `app.integrations.kube.client` as Lifeline's issuer or as a
credential.

The issuer is tried in this order: the operator's kubeconfig entry for the cluster's endpoint
(`LIFELINE_ISSUER_KUBECONFIG`, an explicit override), an EKS IAM token, then Lifeline's own x509
issuer identity (`lifeline:issuer`, created while connected), which keeps working while IAM is down.
Each candidate is used only once the server accepted it and allowed what issuing needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.integrations.aws import AwsClients
from app.integrations.kube import client as kube
from app.integrations.kube.identity import (
    IAM,
    IAM_SOURCE,
    Permission,
    choose_identity,
    describe,
    token_cache,
    verified_connection,
)
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
# What creating Lifeline's own identities needs besides (its ClusterRoles are written first).
PROVISIONER_NEEDS: tuple[Permission, ...] = (
    *ISSUER_NEEDS,
    ("create", "clusterroles", "rbac.authorization.k8s.io"),
)
OWN_ISSUER_SOURCE = "Lifeline's own issuer identity (lifeline:issuer)"
OVERRIDE_SOURCE = "issuer kubeconfig"
DISCONNECT_HINT = (
    "IAM authentication fails while the Outpost is disconnected from its Region, and Lifeline has no "
    "issuer identity of its own on this cluster yet (it creates one while the Region is reachable)"
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

    def apply_cluster_role(
        self, name: str, rules: list[dict[str, Any]], *, labels: dict[str, str]
    ) -> str: ...

    def labelled(self, kind: str, selector: str) -> list[str]: ...

    def rbac_bindings(self) -> list[dict[str, Any]]: ...

    def cluster_role_rules(self, name: str) -> list[dict[str, Any]] | None: ...

    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool: ...

    def subject_can(
        self, user: str, groups: Sequence[str], verb: str, resource: str, *, group: str = ""
    ) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClusterAccess:
    """How the service reaches a cluster: as Lifeline's issuer, or as a credential (cert and key)."""

    issuer: Callable[[ClusterTarget], ClusterApi]
    as_client: Callable[[ClusterTarget, str, bytes], ClusterApi]
    # Who may write Lifeline's own ClusterRoles: the override or IAM, never Lifeline's own identity.
    provisioner: Callable[[ClusterTarget], ClusterApi] | None = None


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

    def apply_cluster_role(self, name: str, rules: list[dict[str, Any]], *, labels: dict[str, str]) -> str:
        with _translated(f"writing ClusterRole {name}"):
            return self._conn.apply_cluster_role(name, rules, labels=labels)

    def labelled(self, kind: str, selector: str) -> list[str]:
        """Names of the CSRs (`kind="csr"`) or ClusterRoleBindings (`"binding"`) matching a label selector."""
        api_version, plural = {
            "csr": ("certificates.k8s.io/v1", "certificatesigningrequests"),
            "binding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
        }[kind]
        with _translated(f"listing {plural} labelled {selector}"):
            items = self._conn.iter_objects(api_version, plural, label_selector=selector)
            return sorted(str((obj.get("metadata") or {}).get("name", "")) for obj in items)

    def rbac_bindings(self) -> list[dict[str, Any]]:
        """Every ClusterRoleBinding and (in all namespaces) RoleBinding, as the API returns them."""
        with _translated("listing ClusterRoleBindings and RoleBindings"):
            rbac = "rbac.authorization.k8s.io/v1"
            return [
                *self._conn.iter_objects(rbac, "clusterrolebindings"),
                *self._conn.iter_objects(rbac, "rolebindings"),
            ]

    def cluster_role_rules(self, name: str) -> list[dict[str, Any]] | None:
        try:
            with _translated(f"reading ClusterRole {name}"):
                obj = self._conn.get_object("rbac.authorization.k8s.io/v1", "clusterroles", name)
        except ClusterApiError as exc:
            if exc.status == 404:
                return None
            raise
        return list(obj.get("rules") or [])

    def can_i(self, verb: str, resource: str, *, group: str = "") -> bool:
        with _translated(f"SelfSubjectAccessReview {verb} {resource}"):
            return self._conn.can_i(verb, resource, group=group)

    def subject_can(
        self, user: str, groups: Sequence[str], verb: str, resource: str, *, group: str = ""
    ) -> bool:
        with _translated(f"SubjectAccessReview for {user} {verb} {resource}"):
            return self._conn.subject_can(user, groups, verb, resource, group=group)

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


OwnIssuer = Callable[[ClusterTarget], Identity | None]
"""Lifeline's own issuer identity for a cluster (from the database), or None when it has none."""


def cluster_access(
    *,
    clients: AwsClients,
    issuer_kubeconfig: Path | None,
    timeout: float = 10.0,
    own_issuer: OwnIssuer | None = None,
) -> ClusterAccess:
    """Lifeline's issuer (override kubeconfig entry, EKS IAM token, then its own issuer identity),
    the provisioner (override, then IAM) and connections as a credential."""

    def _override(target: ClusterTarget, requires: tuple[Permission, ...]) -> tuple[ClusterApi | None, str]:
        entry, missing = _issuer_entry(issuer_kubeconfig, target.endpoint)
        if entry is None:
            return None, missing
        try:
            connection = verified_connection(connect_identity(target, entry, timeout=timeout), requires)
        except Exception as exc:
            return None, f"{entry.source}: {describe(exc)}"
        return KubeClusterApi(connection, OVERRIDE_SOURCE), ""

    def _choose(target: ClusterTarget, requires: tuple[Permission, ...], *, own: bool) -> ClusterApi:
        override, override_error = _override(target, requires)
        if override is not None:
            return override
        identity = own_issuer(target) if (own and own_issuer is not None) else None
        missing = "Lifeline has no issuer identity of its own on this cluster" if own else "not tried"
        choice = choose_identity(
            target,
            tokens=token_cache(clients),
            x509=identity,
            x509_missing=missing,
            timeout=timeout,
            requires=requires,
        )
        if choice.connection is None:
            parts = [override_error, f"EKS IAM token: {choice.iam_error}"]
            if own:
                parts.append(choice.x509_error or "")
            message = "; ".join(p for p in parts if p)
            raise IssuerUnavailable(
                message if identity else f"{message}. {DISCONNECT_HINT}" if own else message
            )
        description = IAM_SOURCE if choice.path == IAM else OWN_ISSUER_SOURCE
        return KubeClusterApi(choice.connection, description)

    def issuer(target: ClusterTarget) -> ClusterApi:
        return _choose(target, ISSUER_NEEDS, own=True)

    def provisioner(target: ClusterTarget) -> ClusterApi:
        return _choose(target, PROVISIONER_NEEDS, own=False)

    def as_client(target: ClusterTarget, cert_pem: str, key_pem: bytes) -> ClusterApi:
        auth = KubeAuth.x509(cert_pem, key_pem.decode())
        return KubeClusterApi(
            kube.connect(target.endpoint, target.ca_pem, auth, timeout=timeout), "credential"
        )

    return ClusterAccess(issuer=issuer, as_client=as_client, provisioner=provisioner)


def connect_identity(target: ClusterTarget, identity: Identity, *, timeout: float) -> kube.KubeConnection:
    """A connection to the cluster as an x509 (or token) identity, with its own CA and TLS name if any."""
    return kube.connect(
        target.endpoint,
        identity.ca_pem or target.ca_pem,
        identity.auth,
        tls_server_name=identity.tls_server_name,
        timeout=timeout,
    )
