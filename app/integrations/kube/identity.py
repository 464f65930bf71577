"""The one choice of identity Lifeline acts with on a cluster, for the readiness poller and for
credential runs alike: an EKS IAM token first, else Lifeline's x509 identity (its own reader or
issuer identity, its fallback credential, or an operator kubeconfig entry). A candidate is used
only after the server has accepted it (SelfSubjectReview) and allowed what the caller needs
(SelfSubjectAccessReview), so a refused IAM token falls through to x509 during a disconnect, and an
IAM principal without RBAC rights does not shadow an operator's admin kubeconfig.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.integrations.aws import AwsClients
from app.integrations.eks_token import TokenCache
from app.integrations.kube.client import KubeConnection, KubeError, KubeUnreachable, connect
from app.integrations.kube.types import ClusterTarget, Identity, KubeAuth

IAM = "iam"
X509 = "x509"
NONE = "none"
IAM_SOURCE = "EKS IAM token"

# (verb, resource, API group) an identity must be allowed, checked by SelfSubjectAccessReview.
Permission = tuple[str, str, str]

_token_caches: dict[AwsClients, TokenCache] = {}
_caches_lock = threading.Lock()


def token_cache(clients: AwsClients) -> TokenCache:
    """The process-wide token cache for one AWS configuration (tokens live 14 minutes)."""
    with _caches_lock:
        return _token_caches.setdefault(clients, TokenCache(clients))


@dataclass(frozen=True)
class IdentityChoice:
    """The verified connection (None when no identity was accepted) and what each candidate said."""

    connection: KubeConnection | None = field(compare=False, repr=False)
    path: str  # iam | x509 | none
    source: str  # IAM_SOURCE, the x509 identity's source, or "" for none
    iam_error: str | None
    x509_error: str | None
    x509_probed: bool
    # The API server answered at least one candidate (a 401 or 403 is an answer; a timeout is not).
    answered: bool = False

    @property
    def summary(self) -> dict[str, str]:
        """{"iam": "ok" | why not, "x509": "ok" | why not | "not tried"} for showing to an operator."""
        if self.x509_error is not None:
            x509 = self.x509_error
        else:
            x509 = "ok" if self.x509_probed else "not tried: IAM was accepted"
        return {"iam": self.iam_error or "ok", "x509": x509}


def describe(exc: Exception) -> str:
    """An exception as one line for an operator (Kubernetes errors already read well)."""
    if isinstance(exc, KubeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:300]


def _answered(exc: Exception) -> bool:
    """Whether an attempt got an HTTP answer from the API server (refused counts, unreachable does not)."""
    return isinstance(exc, NotAllowed) or (
        isinstance(exc, KubeError) and not isinstance(exc, KubeUnreachable)
    )


class NotAllowed(Exception):
    """The server accepted the identity, but RBAC does not allow what the caller needs."""


def verified_connection(connection: KubeConnection, requires: Sequence[Permission]) -> KubeConnection:
    """Prove the identity is accepted (and allowed `requires`) before trusting the connection."""
    try:
        who = connection.whoami()
        for verb, resource, group in requires:
            if not connection.can_i(verb, resource, group=group):
                raise NotAllowed(f"accepted as {who.username}, but may not {verb} {resource}")
    except Exception:
        connection.close()
        raise
    return connection


def choose_identity(
    target: ClusterTarget,
    *,
    tokens: TokenCache,
    x509: Identity | None,
    x509_missing: str,
    timeout: float,
    requires: Sequence[Permission] = (),
    probe_both: bool = False,
) -> IdentityChoice:
    """Connect as an EKS IAM token, else as `x509`; with `probe_both` the x509 identity is tried
    even when IAM works, so a page can say whether the disconnect path would work too.

    `x509_missing` is the message recorded when there is no x509 identity. The x509 connection
    uses the identity's own CA and TLS server name when its kubeconfig names them (as kubectl would).
    """
    iam_connection: KubeConnection | None = None
    iam_error: str | None = None
    answered = False
    try:
        token = tokens.get(target.region, target.iam_cluster_id)
        auth = KubeAuth.bearer(token.token)
        iam_connection = verified_connection(
            connect(target.endpoint, target.ca_pem, auth, timeout=timeout), requires
        )
    except Exception as exc:
        iam_error = describe(exc)
        answered = _answered(exc)
        tokens.forget(target.region, target.iam_cluster_id)
    x509_connection: KubeConnection | None = None
    x509_error: str | None = None
    probed = iam_connection is None or probe_both
    if probed:
        if x509 is None:
            x509_error = x509_missing
        else:
            try:
                x509_connection = verified_connection(
                    connect(
                        target.endpoint,
                        x509.ca_pem or target.ca_pem,
                        x509.auth,
                        tls_server_name=x509.tls_server_name,
                        timeout=timeout,
                    ),
                    requires,
                )
            except Exception as exc:
                x509_error = f"{x509.source}: {describe(exc)}"
                answered = answered or _answered(exc)
    if iam_connection is not None:
        if x509_connection is not None:
            x509_connection.close()
        return IdentityChoice(iam_connection, IAM, IAM_SOURCE, None, x509_error, probed, True)
    if x509_connection is not None:
        assert x509 is not None
        return IdentityChoice(x509_connection, X509, x509.source, iam_error, None, probed, True)
    return IdentityChoice(None, NONE, "", iam_error, x509_error, probed, answered)
