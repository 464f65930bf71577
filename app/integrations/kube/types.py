"""The Kubernetes adapter's vocabulary: how to reach a cluster (`ClusterTarget`, `KubeAuth`,
`Identity`) and what the API answered (version, identity, CSRs, bindings, pages), as frozen
dataclasses. The client, the cluster operations and the kubeconfig reader all speak these types.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------- reaching a cluster


def ca_pem_from_data(certificate_authority: str) -> str:
    """The CA PEM from DescribeCluster's base64 form (or from a PEM stored as-is)."""
    text = certificate_authority.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    return base64.b64decode(text).decode()


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
        return ca_pem_from_data(self.certificate_authority)

    @property
    def iam_cluster_id(self) -> str:
        """What an EKS IAM token names: the local cluster's id, else its name (cloud clusters)."""
        return self.cluster_uid or self.name


@dataclass(frozen=True)
class KubeAuth:
    """How to authenticate: a bearer token, or an x509 client certificate and key (PEM)."""

    token: str | None = field(default=None, repr=False)
    cert_pem: str | None = None
    key_pem: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        has_token = bool(self.token)
        has_cert = bool(self.cert_pem) or bool(self.key_pem)
        if has_token == has_cert:
            raise ValueError("KubeAuth needs either a bearer token or a certificate and key, not both")
        if has_cert and not (self.cert_pem and self.key_pem):
            raise ValueError("KubeAuth x509 needs both cert_pem and key_pem")

    @classmethod
    def bearer(cls, token: str) -> KubeAuth:
        return cls(token=token)

    @classmethod
    def x509(cls, cert_pem: str, key_pem: str) -> KubeAuth:
        return cls(cert_pem=cert_pem, key_pem=key_pem)

    @property
    def method(self) -> str:
        return "token" if self.token else "x509"


@dataclass(frozen=True)
class Identity:
    """A credential Lifeline may act with besides IAM, and where it came from (for messages).

    `server`, `ca_pem` and `tls_server_name` are set when the source (a kubeconfig) names them;
    a connection uses them in preference to the cluster's cached endpoint facts, as kubectl would.
    """

    auth: KubeAuth
    source: str  # "fallback identity", or the kubeconfig's path
    server: str | None = None
    ca_pem: str | None = None
    tls_server_name: str | None = None
    context: str = ""


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ServerVersion:
    git_version: str
    major: str
    minor: str
    platform: str

    @property
    def minor_number(self) -> int:
        return int("".join(ch for ch in self.minor if ch.isdigit()) or 0)


@dataclass(frozen=True)
class UserIdentity:
    """Who the server says the credential is (SelfSubjectReview)."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class CsrCondition:
    type: str
    status: str
    reason: str
    message: str
    last_update_time: dt.datetime | None = None


@dataclass(frozen=True)
class CsrInfo:
    name: str
    uid: str
    signer_name: str
    usages: tuple[str, ...]
    expiration_seconds: int | None
    username: str
    groups: tuple[str, ...]
    conditions: tuple[CsrCondition, ...]
    certificate_pem: str | None
    created_at: dt.datetime | None
    resource_version: str

    def condition(self, kind: str) -> CsrCondition | None:
        """The condition of type `kind` that holds (status "True"), if any."""
        return next((c for c in self.conditions if c.type == kind and c.status == "True"), None)

    @property
    def approved(self) -> bool:
        return self.condition("Approved") is not None

    @property
    def denied(self) -> bool:
        return self.condition("Denied") is not None

    @property
    def failed(self) -> bool:
        return self.condition("Failed") is not None

    @property
    def issued(self) -> bool:
        return bool(self.certificate_pem)


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str = ""


@dataclass(frozen=True)
class ClusterRoleBindingInfo:
    name: str
    uid: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    created_at: dt.datetime | None
    resource_version: str

    @property
    def cluster_role(self) -> str:
        return self.role_name

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.subjects if s.kind == "User")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.subjects if s.kind == "Group")


@dataclass(frozen=True)
class ObjectPage:
    """One page of a list call: items as plain dicts (JSON as served), and how to get the next page."""

    items: tuple[dict[str, Any], ...]
    continue_token: str
    resource_version: str
    remaining_item_count: int | None
