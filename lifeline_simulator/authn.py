"""Authentication like an EKS local cluster: x509 client certificates, and EKS IAM bearer tokens.

Tokens are verified the way aws-iam-authenticator relies on STS to: the presigned GetCallerIdentity
URL's SigV4 signature is recomputed with botocore's signer, the secret looked up by access key id,
and the `x-k8s-aws-id` header set to this cluster's id. Nothing is sent anywhere.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format prefix, not a secret
TOKEN_MAX_BYTES = 4096
TOKEN_LIFETIME = dt.timedelta(minutes=15)
_STS_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")


class AuthenticationFailed(Exception):
    """Credentials were presented and are not valid; the message is for the simulator's log."""


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
    method: str = "x509"

    def with_authenticated(self) -> Identity:
        groups = (
            self.groups if "system:authenticated" in self.groups else (*self.groups, "system:authenticated")
        )
        return Identity(self.user, groups, self.uid, self.extra, self.method)


@dataclass(frozen=True)
class IamPrincipal:
    """An IAM principal the simulated STS knows, and how the cluster maps it (aws-auth / access entry)."""

    access_key_id: str
    secret_access_key: str
    arn: str
    username: str = "kubernetes-admin"
    groups: tuple[str, ...] = ("system:masters",)


# moto's and the test fixtures' credentials; moto's STS reports this ARN for them.
DEFAULT_PRINCIPALS = (IamPrincipal("testing", "testing", "arn:aws:iam::123456789012:user/moto"),)

PrincipalLookup = Callable[[str], IamPrincipal | None]


def decode_token(token: str) -> str:
    """The presigned URL inside an EKS token, or AuthenticationFailed saying what is malformed."""
    if len(token) > TOKEN_MAX_BYTES:
        raise AuthenticationFailed("token is longer than 4096 bytes")
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed(f"token does not start with {TOKEN_PREFIX}")
    body = token[len(TOKEN_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("token body is not base64url") from None


def verify_eks_token(token: str, cluster_id: str, lookup: PrincipalLookup, now: dt.datetime) -> Identity:
    """Verify an EKS bearer token for `cluster_id` and map its principal to a Kubernetes identity."""
    url = decode_token(token)
    parts = urlsplit(url)
    if parts.scheme != "https" or not _STS_HOST.match(parts.hostname or ""):
        raise AuthenticationFailed(f"presigned URL host {parts.hostname!r} is not an STS endpoint")
    raw_pairs = [pair.partition("=") for pair in parts.query.split("&") if pair]
    params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if params.get("Action") != "GetCallerIdentity":
        raise AuthenticationFailed("presigned URL is not for sts:GetCallerIdentity")
    for required in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if required not in params:
            raise AuthenticationFailed(f"presigned URL has no {required}")
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    if "x-k8s-aws-id" not in signed_headers:
        raise AuthenticationFailed("X-Amz-SignedHeaders does not include x-k8s-aws-id")
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthenticationFailed("X-Amz-Date is malformed") from None
    if now - signed_at > TOKEN_LIFETIME:
        raise AuthenticationFailed(f"token was signed at {signed_at:%H:%M:%S}Z, more than 15 minutes ago")
    if signed_at - now > dt.timedelta(minutes=5):
        raise AuthenticationFailed("token is signed in the future")
    credential = params["X-Amz-Credential"].split("/")
    if len(credential) != 5 or credential[3] != "sts" or credential[4] != "aws4_request":
        raise AuthenticationFailed("X-Amz-Credential is malformed")
    access_key_id, region = credential[0], credential[2]
    principal = lookup(access_key_id)
    if principal is None:
        raise AuthenticationFailed(f"access key {access_key_id} is not known to STS")

    # Recompute the signature over the URL minus X-Amz-Signature, with the header this cluster expects.
    unsigned_query = "&".join(f"{k}={v}" if sep else k for k, sep, v in raw_pairs if k != "X-Amz-Signature")
    request = AWSRequest(
        method="GET",
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, unsigned_query, "")),
        headers={"x-k8s-aws-id": cluster_id},
    )
    request.context["timestamp"] = params["X-Amz-Date"]
    signer = SigV4Auth(Credentials(access_key_id, principal.secret_access_key), "sts", region)
    headers = signer.headers_to_sign(request)
    if signer.signed_headers(headers) != ";".join(sorted(signed_headers)):
        raise AuthenticationFailed(f"unexpected signed headers {params['X-Amz-SignedHeaders']}")
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise AuthenticationFailed(
            "signature does not match (wrong secret, or signed for another cluster id)"
        )
    return Identity(
        user=principal.username,
        groups=principal.groups,
        uid=f"aws-iam-authenticator:{principal.arn}",
        extra={"arn": [principal.arn], "accessKeyId": [access_key_id]},
        method="iam",
    )
