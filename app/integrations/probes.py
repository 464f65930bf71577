"""Site probes: small, time-bounded checks made from wherever this dashboard runs.

An AWS endpoint probe resolves, connects, shakes hands and makes one cheap authenticated call; a
cluster probe checks TLS against the cluster CA and `/livez`, then authenticates with a
SelfSubjectReview. Each returns a `ProbeResult` whose `result` says *how far* it got, so a DNS
failure, a timeout, a TLS failure and an answer (even an error answer: the endpoint is reachable)
are told apart. Standard library sockets and `ssl`, no SDK objects leave this module.
"""

from __future__ import annotations

import errno
import functools
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import SSLError as BotoSSLError

from app.integrations.aws import AwsClients, error_code

# Probe kinds (the `kind` label on /metrics).
AWS_CLOUDWATCH = "aws_cloudwatch"
AWS_EKS = "aws_eks"
AWS_STS = "aws_sts"
AWS_KINDS = (AWS_CLOUDWATCH, AWS_EKS, AWS_STS)
KUBE_LIVEZ = "kube_livez"  # the cluster endpoint: TLS to the cluster CA and /livez
KUBE_IP_LIVEZ = "kube_ip_livez"  # one known control-plane IP, same check
KUBE_IAM = "kube_iam"  # SelfSubjectReview with an EKS IAM token
KUBE_X509 = "kube_x509"  # SelfSubjectReview with Lifeline's own x509 identity
KINDS = (*AWS_KINDS, KUBE_LIVEZ, KUBE_IP_LIVEZ, KUBE_IAM, KUBE_X509)

# How far a probe got. "answered": the endpoint replied with an error (reachable all the same);
# "rejected": the server answered and refused the credential (401).
OK = "ok"
ANSWERED = "answered"
REJECTED = "rejected"
DNS = "dns"
NO_ROUTE = "no_route"  # refused, unreachable network or host
TIMEOUT = "timeout"
TLS = "tls"
ERROR = "error"  # an answer that makes no sense, or no credential to try
REACHED = frozenset({OK, ANSWERED, REJECTED})
UNREACHED = frozenset({DNS, NO_ROUTE, TIMEOUT, TLS})

# The endpoint prefix of each service (CloudWatch's API host is `monitoring`).
SERVICE_HOSTS = {AWS_CLOUDWATCH: "monitoring", AWS_EKS: "eks", AWS_STS: "sts"}
_SERVICES = {AWS_CLOUDWATCH: "cloudwatch", AWS_EKS: "eks", AWS_STS: "sts"}
_SELF_REVIEW = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()


@dataclass(frozen=True)
class ProbeResult:
    kind: str
    target: str
    result: str
    latency_seconds: float | None
    detail: str = ""

    @property
    def up(self) -> bool:
        """Reachability probes: the endpoint answered. Authentication probes: it accepted us."""
        if self.kind in (KUBE_IAM, KUBE_X509):
            return self.result == OK
        return self.result in REACHED


class _Failed(Exception):
    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result = result
        self.detail = detail


def aws_endpoint(kind: str, region: str, endpoint_url: str | None) -> str:
    """The URL boto3 would talk to for this kind's service (the configured endpoint, if any)."""
    if endpoint_url:
        return endpoint_url
    return f"https://{SERVICE_HOSTS[kind]}.{region}.amazonaws.com"


def _classify_os_error(exc: OSError, host: str, port: int) -> _Failed:
    if isinstance(exc, socket.gaierror):
        return _Failed(DNS, f"{host} does not resolve ({exc.strerror or exc})")
    if isinstance(exc, TimeoutError | socket.timeout):
        return _Failed(TIMEOUT, f"no answer from {host}:{port} in time")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
        return _Failed(TLS, f"TLS with {host}:{port} failed: {reason}")
    if isinstance(exc, ConnectionRefusedError) or exc.errno in (
        errno.ECONNREFUSED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
    ):
        return _Failed(NO_ROUTE, f"{host}:{port}: {exc.strerror or exc}")
    return _Failed(NO_ROUTE, f"{host}:{port}: {type(exc).__name__}: {exc}")


def _open(
    url: str,
    context: ssl.SSLContext | None,
    timeout: float,
    server_name: str | None = None,
    connect_to: str | None = None,
) -> tuple[socket.socket, str, int]:
    """Resolve, connect and (for https) shake hands; raise _Failed saying which step failed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = connect_to or host
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _classify_os_error(exc, address, port) from None
    try:
        sock = socket.create_connection((str(infos[0][4][0]), int(infos[0][4][1])), timeout=timeout)
    except OSError as exc:
        raise _classify_os_error(exc, address, port) from None
    if parts.scheme != "https":
        return sock, host, port
    assert context is not None
    try:
        return context.wrap_socket(sock, server_hostname=server_name or host), host, port
    except OSError as exc:
        sock.close()
        raise _classify_os_error(exc, address, port) from None


def _timed(kind: str, target: str, work: Callable[[], tuple[str, str]]) -> ProbeResult:
    started = time.perf_counter()
    try:
        result, detail = work()
    except _Failed as failed:
        return ProbeResult(kind, target, failed.result, time.perf_counter() - started, failed.detail)
    except Exception as exc:  # a probe never raises: its failure is its result
        return ProbeResult(kind, target, ERROR, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    return ProbeResult(kind, target, result, time.perf_counter() - started, detail)


# ---------------------------------------------------------------- AWS endpoints


def _cheap_call(kind: str, client: Any) -> None:
    if kind == AWS_STS:
        client.get_caller_identity()
    elif kind == AWS_EKS:
        client.list_clusters(maxResults=1)
    else:
        client.describe_alarms(MaxRecords=1)


@functools.lru_cache(maxsize=1)
def _system_context() -> ssl.SSLContext:
    # Loading the system trust store costs milliseconds; one context serves every AWS probe.
    return ssl.create_default_context()


def probe_aws(kind: str, region: str, clients: AwsClients) -> ProbeResult:
    """Reach one service's endpoint in `region`: resolve, connect, TLS, then one cheap signed call.

    `clients` should carry the probe's short timeouts and a single attempt (see `probe_clients`).
    """
    url = aws_endpoint(kind, region, clients.endpoint_url)
    target = f"{SERVICE_HOSTS[kind]}.{region}"

    def work() -> tuple[str, str]:
        sock, host, port = _open(url, _system_context(), clients.connect_timeout)
        sock.close()
        try:
            _cheap_call(kind, clients.client(_SERVICES[kind], region))
        except ClientError as exc:
            return ANSWERED, f"answered {error_code(exc) or 'an error'} (reachable)"
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise _Failed(TIMEOUT, f"{host}:{port}: {exc}") from None
        except BotoSSLError as exc:
            raise _Failed(TLS, f"{host}:{port}: {exc}") from None
        except EndpointConnectionError as exc:
            raise _Failed(NO_ROUTE, str(exc)) from None
        except BotoCoreError as exc:
            # No credentials and the like: the endpoint itself was reached above.
            return ANSWERED, f"reached; the call failed locally: {exc}"
        return OK, "answered"

    return _timed(kind, target, work)


def probe_clients(clients: AwsClients, timeout: float) -> AwsClients:
    """The same AWS configuration with probe timeouts and one attempt (a probe never retries)."""
    return AwsClients(
        endpoint_url=clients.endpoint_url, connect_timeout=timeout, read_timeout=timeout, max_attempts=1
    )


# ---------------------------------------------------------------- clusters


@dataclass(frozen=True)
class X509Pair:
    cert_pem: str
    key_pem: str = ""

    def __repr__(self) -> str:  # the key is a secret: never in logs
        return "X509Pair(<certificate>)"


def _memfd(label: str, content: str) -> str:
    fd = os.memfd_create(f"lifeline-probe-{label}", os.MFD_CLOEXEC)
    os.write(fd, content.encode())
    return f"/proc/self/fd/{fd}"


def cluster_context(ca_pem: str, client: X509Pair | None = None) -> ssl.SSLContext:
    """TLS verifying the server against the cluster CA only; with `client`, presenting that identity."""
    context = ssl.create_default_context(cadata=ca_pem)
    if client is not None:
        # load_cert_chain reads files: hand it memory-backed ones so the key never touches disk.
        paths = [_memfd("cert", client.cert_pem), _memfd("key", client.key_pem)]
        try:
            context.load_cert_chain(paths[0], paths[1])
        finally:
            for path in paths:
                os.close(int(path.rsplit("/", 1)[1]))
    return context


def _request(
    sock: socket.socket,
    host: str,
    port: int,
    method: str,
    path: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection.sock = sock
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(65536)
    except OSError as exc:
        raise _classify_os_error(exc, host, port) from None
    finally:
        connection.close()


def probe_livez(
    endpoint: str,
    context: ssl.SSLContext,
    timeout: float,
    *,
    kind: str = KUBE_LIVEZ,
    target: str,
    connect_to: str | None = None,
) -> ProbeResult:
    """TLS to the cluster (verified against its CA) and GET /livez; `connect_to` dials an IP instead
    of the endpoint's host while still verifying the endpoint's name."""

    def work() -> tuple[str, str]:
        sock, host, port = _open(endpoint, context, timeout, connect_to=connect_to)
        code, body = _request(sock, host, port, "GET", "/livez", timeout)
        if code == 200:
            return OK, "livez ok"
        if code in (401, 403):
            return ANSWERED, f"livez answered {code} (anonymous access off)"
        return ANSWERED, f"livez answered {code}: {body[:120].decode(errors='replace')}"

    return _timed(kind, target, work)


def probe_self_review(
    endpoint: str,
    context: ssl.SSLContext,
    timeout: float,
    *,
    kind: str,
    target: str,
    token: str | None = None,
) -> ProbeResult:
    """POST a SelfSubjectReview with a bearer token or the context's client certificate: ok (with the
    username the server saw), rejected (401), or how the request failed."""

    def work() -> tuple[str, str]:
        sock, host, port = _open(endpoint, context, timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        code, body = _request(
            sock,
            host,
            port,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            timeout,
            headers,
            _SELF_REVIEW,
        )
        if code in (200, 201):
            try:
                user = json.loads(body)["status"]["userInfo"]["username"]
            except (ValueError, KeyError, TypeError):
                user = "?"
            return OK, f"accepted as {user}"
        if code == 401:
            return REJECTED, "401 Unauthorized: the server refused this credential"
        if code == 403:
            return OK, "authenticated (403: SelfSubjectReview not allowed)"
        return ERROR, f"SelfSubjectReview answered {code}"

    return _timed(kind, target, work)


def not_tried(kind: str, target: str, why: str) -> ProbeResult:
    """A probe that could not be attempted (no credential, no CA): recorded so pages can say why."""
    return ProbeResult(kind, target, ERROR, None, why)


__all__ = [
    "ANSWERED",
    "AWS_KINDS",
    "DNS",
    "ERROR",
    "KINDS",
    "NO_ROUTE",
    "OK",
    "REACHED",
    "REJECTED",
    "TIMEOUT",
    "TLS",
    "UNREACHED",
    "ProbeResult",
    "X509Pair",
    "aws_endpoint",
    "cluster_context",
    "not_tried",
    "probe_aws",
    "probe_clients",
    "probe_livez",
    "probe_self_review",
]
