"""EKS IAM bearer tokens built with boto3 alone, as `aws eks get-token` builds them.

A token is `k8s-aws-v1.` + base64url (no padding) of a presigned STS GetCallerIdentity URL whose
signature covers the `x-k8s-aws-id` header. For a local cluster that header is the cluster *id*
(the UUID from DescribeCluster), not its name. STS accepts the URL for 15 minutes after
X-Amz-Date, so tokens are cached for 14 minutes at most. Presigning is local: no network call.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.integrations.aws import AwsClients

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_TTL = dt.timedelta(minutes=14)


@dataclass(frozen=True)
class EksToken:
    token: str
    expires_at: dt.datetime

    def __repr__(self) -> str:  # the token is a credential: never in logs
        return f"EksToken(expires_at={self.expires_at.isoformat()})"


def _sts_client(clients: AwsClients, region: str) -> Any:
    # The token is verified by the cluster's authenticator against the real regional STS, so the
    # URL must name sts.<region>.amazonaws.com even when boto3 is pointed at moto or a VPC endpoint.
    regional = AwsClients(
        endpoint_url=f"https://sts.{region}.amazonaws.com",
        connect_timeout=clients.connect_timeout,
        read_timeout=clients.read_timeout,
        max_attempts=clients.max_attempts,
    )
    return regional.client("sts", region)


def build_token(
    clients: AwsClients, region: str, cluster_id: str, *, now: dt.datetime | None = None
) -> EksToken:
    """A fresh token for `cluster_id` (the local cluster's id) with the ambient AWS credentials."""
    sts = _sts_client(clients, region)

    def move_id_to_context(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if CLUSTER_ID_HEADER in params:
            context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)

    def sign_id_header(request: Any, **_: Any) -> None:
        if CLUSTER_ID_HEADER in request.context:
            request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", move_id_to_context)
    events.register("before-sign.sts.GetCallerIdentity", sign_id_header)
    url = sts.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_id},
        ExpiresIn=60,  # ignored by STS (15 min from X-Amz-Date); kept as the CLI does
        HttpMethod="GET",
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    issued = now or dt.datetime.now(dt.UTC)
    return EksToken(token=TOKEN_PREFIX + encoded, expires_at=issued + TOKEN_TTL)


class TokenCache:
    """Tokens per (region, cluster id), reused until one minute before their 14-minute expiry."""

    def __init__(self, clients: AwsClients, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clients = clients
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._tokens: dict[tuple[str, str], EksToken] = {}
        self._lock = threading.Lock()

    def get(self, region: str, cluster_id: str) -> EksToken:
        now = self._clock()
        with self._lock:
            cached = self._tokens.get((region, cluster_id))
            if cached is not None and cached.expires_at - now > dt.timedelta(minutes=1):
                return cached
        token = build_token(self._clients, region, cluster_id, now=now)
        with self._lock:
            self._tokens[(region, cluster_id)] = token
        return token

    def forget(self, region: str, cluster_id: str) -> None:
        with self._lock:
            self._tokens.pop((region, cluster_id), None)
