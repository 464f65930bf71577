"""What the credentials service needs from a cluster, as a protocol with our own dataclasses.

`app.integrations.kube` (the Kubernetes adapter) provides the connection; this module narrows it to
the CSR, ClusterRoleBinding and identity calls, so the service never sees SDK objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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


def cluster_access(settings: Any) -> Any:
    """The issuer and client connections for `ClusterAccess` (wired to `app.integrations.kube`)."""
    raise IssuerUnavailable("the Kubernetes adapter (app.integrations.kube, issue 3) is not installed yet")
