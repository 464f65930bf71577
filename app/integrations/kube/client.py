"""The Kubernetes client: a configured official ApiClient and every call Lifeline makes on a cluster.

Every call returns the frozen dataclasses of `app.integrations.kube.types` (or plain dicts for raw
object lists), never V1 objects; API failures become the `KubeError` family below.

Private keys never touch a filesystem: the client library (urllib3 under it) insists on file paths
for the client certificate and key, so both live in anonymous memory files (`os.memfd_create`,
close-on-exec) opened through `/proc/self/fd/N`. urllib3 re-reads them for every new TLS
connection, so they stay open for the connection's lifetime and are closed by `close()`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from app.integrations.kube.types import (
    ClusterRoleBindingInfo,
    CsrCondition,
    CsrInfo,
    KubeAuth,
    ObjectPage,
    ServerVersion,
    Subject,
    UserIdentity,
)

# The types are re-exported so that callers of the client need one import.
__all__ = [
    "CLIENT_SIGNER",
    "ClusterRoleBindingInfo",
    "CsrInfo",
    "CsrNotIssued",
    "KubeAuth",
    "KubeConflict",
    "KubeConnection",
    "KubeError",
    "KubeForbidden",
    "KubeInvalid",
    "KubeNotFound",
    "KubeUnauthorized",
    "KubeUnreachable",
    "ObjectPage",
    "ServerVersion",
    "UserIdentity",
    "connect",
]

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
RBAC_GROUP = "rbac.authorization.k8s.io"


# ---------------------------------------------------------------------------- errors


class KubeError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP code (0 when the server was unreachable)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message


class KubeUnreachable(KubeError):
    """No HTTP answer: connection refused, TLS failure or timeout."""


class KubeUnauthorized(KubeError):
    """401: the credential was not accepted."""


class KubeForbidden(KubeError):
    """403: authenticated, but RBAC (or admission) refused."""


class KubeNotFound(KubeError):
    """404."""


class KubeConflict(KubeError):
    """409: already exists, or a stale resourceVersion."""


class KubeInvalid(KubeError):
    """422: the object was rejected by validation."""


_ERRORS: dict[int, type[KubeError]] = {
    401: KubeUnauthorized,
    403: KubeForbidden,
    404: KubeNotFound,
    409: KubeConflict,
    422: KubeInvalid,
}


def _error_from(exc: ApiException) -> KubeError:
    status = int(exc.status or 0)
    reason, message = str(exc.reason or ""), str(exc.reason or "")
    try:
        body = json.loads(exc.body or "{}")
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or message)
    except (ValueError, TypeError):
        pass
    return _ERRORS.get(status, KubeError)(status, reason, message)


class CsrNotIssued(KubeError):
    """The CSR was denied or failed, or no certificate came before the deadline."""


# ---------------------------------------------------------------------------- helpers


def _memfd(label: str, content: str) -> int:
    fd = os.memfd_create(f"lifeline-{label}", os.MFD_CLOEXEC)
    data = content.encode()
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    return fd


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _csr_info(obj: dict[str, Any]) -> CsrInfo:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    certificate = status.get("certificate")
    return CsrInfo(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        signer_name=str(spec.get("signerName", "")),
        usages=tuple(spec.get("usages") or ()),
        expiration_seconds=spec.get("expirationSeconds"),
        username=str(spec.get("username", "")),
        groups=tuple(spec.get("groups") or ()),
        conditions=tuple(
            CsrCondition(
                type=str(c.get("type", "")),
                status=str(c.get("status", "")),
                reason=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
                last_update_time=_parse_time(c.get("lastUpdateTime")),
            )
            for c in status.get("conditions") or []
        ),
        certificate_pem=base64.b64decode(certificate).decode() if certificate else None,
        created_at=_parse_time(meta.get("creationTimestamp")),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def _binding_info(obj: dict[str, Any]) -> ClusterRoleBindingInfo:
    meta, ref = obj.get("metadata") or {}, obj.get("roleRef") or {}
    return ClusterRoleBindingInfo(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        role_kind=str(ref.get("kind", "")),
        role_name=str(ref.get("name", "")),
        subjects=tuple(
            Subject(str(s.get("kind", "")), str(s.get("name", "")), str(s.get("namespace") or ""))
            for s in obj.get("subjects") or []
        ),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        created_at=_parse_time(meta.get("creationTimestamp")),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def _collection_path(api_version: str, plural: str, namespace: str | None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


# ---------------------------------------------------------------------------- the connection


class KubeConnection:
    """A configured ApiClient for one cluster endpoint and credential. Close it (or use `with`)."""

    def __init__(self, api_client: Any, fds: list[int], timeout: float) -> None:
        self.api_client = api_client
        self._fds = fds
        self.timeout = timeout

    def __enter__(self) -> KubeConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.api_client.close()
        finally:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds = []

    # -- raw JSON calls (our own decoding keeps V1 objects inside this module)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Sequence[tuple[str, Any]] = (),
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            method, url, headers, body, _ = self.api_client.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=(min(self.timeout, 5.0), self.timeout),
            )
            raw = response.read()
        except ApiException as exc:
            if not exc.status:
                raise KubeUnreachable(0, "Unreachable", f"{method} {path}: {exc.reason}") from None
            raise _error_from(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnreachable(0, "Unreachable", f"{method} {path}: {exc}") from None
        if not 200 <= response.status <= 299:
            raise _error_from(
                ApiException(
                    status=response.status, reason=response.reason, body=raw.decode(errors="replace")
                )
            )
        return dict(json.loads(raw)) if raw else {}

    # -- identity and version

    def version(self) -> ServerVersion:
        data = self._call("GET", "/version/")
        return ServerVersion(
            git_version=str(data.get("gitVersion", "")),
            major=str(data.get("major", "")),
            minor=str(data.get("minor", "")),
            platform=str(data.get("platform", "")),
        )

    def whoami(self) -> UserIdentity:
        """The identity the server sees for this credential (SelfSubjectReview)."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            data = self._call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body)
        except KubeNotFound:
            body["apiVersion"] = "authentication.k8s.io/v1beta1"
            data = self._call("POST", "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews", body=body)
        info = (data.get("status") or {}).get("userInfo") or {}
        return UserIdentity(
            username=str(info.get("username", "")),
            uid=str(info.get("uid") or ""),
            groups=tuple(info.get("groups") or ()),
            extra={k: tuple(v) for k, v in (info.get("extra") or {}).items()},
        )

    def can_i(
        self,
        verb: str,
        resource: str,
        *,
        group: str = "",
        namespace: str = "",
        name: str = "",
        subresource: str = "",
    ) -> bool:
        """SelfSubjectAccessReview: may this credential do `verb` on `resource`?"""
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace, "name": name}
        if subresource:
            attrs["subresource"] = subresource
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {k: v for k, v in attrs.items() if v}},
        }
        data = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        return bool((data.get("status") or {}).get("allowed"))

    def subject_can(
        self,
        user: str,
        groups: Sequence[str],
        verb: str,
        resource: str,
        *,
        group: str = "",
        namespace: str = "",
    ) -> bool:
        """SubjectAccessReview: may `user` in `groups` (exactly these: the API server adds none) do
        `verb` on `resource`? Asked by this connection, which needs `create subjectaccessreviews`."""
        attrs = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": list(groups),
                "resourceAttributes": {k: v for k, v in attrs.items() if v},
            },
        }
        data = self._call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
        return bool((data.get("status") or {}).get("allowed"))

    # -- certificate signing requests

    def create_csr(
        self,
        name: str,
        csr_pem: str | bytes,
        *,
        signer_name: str = CLIENT_SIGNER,
        usages: Sequence[str] = ("client auth",),
        expiration_seconds: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> CsrInfo:
        pem = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
        spec: dict[str, Any] = {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer_name,
            "usages": list(usages),
        }
        if expiration_seconds is not None:
            spec["expirationSeconds"] = expiration_seconds
        body = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": spec,
        }
        return _csr_info(
            self._call("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", body=body)
        )

    def get_csr(self, name: str) -> CsrInfo:
        return _csr_info(self._call("GET", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"))

    def _decide_csr(self, name: str, kind: str, reason: str, message: str) -> CsrInfo:
        path = f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"
        current = self._call("GET", path)
        status = current.setdefault("status", {})
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status.setdefault("conditions", []).append(
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        )
        return _csr_info(self._call("PUT", f"{path}/approval", body=current))

    def approve_csr(self, name: str, *, reason: str, message: str) -> CsrInfo:
        """Add the Approved condition through the `approval` subresource."""
        return self._decide_csr(name, "Approved", reason, message)

    def deny_csr(self, name: str, *, reason: str, message: str) -> CsrInfo:
        return self._decide_csr(name, "Denied", reason, message)

    def wait_for_certificate(self, name: str, *, timeout: float = 30.0, interval: float = 0.5) -> CsrInfo:
        """Poll until the certificate is issued; CsrNotIssued on Denied, Failed or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.get_csr(name)
            if info.issued:
                return info
            if info.denied or info.failed:
                kind = "denied" if info.denied else "failed"
                detail = next((c.message for c in info.conditions if c.type in ("Denied", "Failed")), "")
                raise CsrNotIssued(0, kind.capitalize(), f"CSR {name} was {kind}: {detail}".rstrip(": "))
            if time.monotonic() >= deadline:
                state = (
                    "approved but no certificate was issued (check the usages)"
                    if info.approved
                    else "pending"
                )
                raise CsrNotIssued(0, "Timeout", f"CSR {name} is {state} after {timeout:.0f} s")
            time.sleep(interval)

    def delete_csr(self, name: str) -> bool:
        """Delete a CSR; False when it was already gone."""
        try:
            self._call("DELETE", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}")
        except KubeNotFound:
            return False
        return True

    # -- cluster role bindings

    def create_cluster_role_binding(
        self,
        name: str,
        cluster_role: str,
        *,
        users: Sequence[str] = (),
        groups: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> ClusterRoleBindingInfo:
        subjects = [{"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in users]
        subjects += [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups]
        body = {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
            "subjects": subjects,
        }
        return _binding_info(self._call("POST", f"/apis/{RBAC_GROUP}/v1/clusterrolebindings", body=body))

    def get_cluster_role_binding(self, name: str) -> ClusterRoleBindingInfo | None:
        try:
            return _binding_info(self._call("GET", f"/apis/{RBAC_GROUP}/v1/clusterrolebindings/{name}"))
        except KubeNotFound:
            return None

    def delete_cluster_role_binding(self, name: str) -> bool:
        """Delete a binding; False when it was already gone."""
        try:
            self._call("DELETE", f"/apis/{RBAC_GROUP}/v1/clusterrolebindings/{name}")
        except KubeNotFound:
            return False
        return True

    def apply_cluster_role(
        self, name: str, rules: Sequence[Mapping[str, Any]], *, labels: Mapping[str, str] | None = None
    ) -> str:
        """Create the ClusterRole, or replace its rules when they differ.

        Returns "created", "updated" or "unchanged"."""
        path = f"/apis/{RBAC_GROUP}/v1/clusterroles"
        body: dict[str, Any] = {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "rules": [dict(rule) for rule in rules],
        }
        try:
            current = self._call("GET", f"{path}/{name}")
        except KubeNotFound:
            self._call("POST", path, body=body)
            return "created"
        if (
            current.get("rules") == body["rules"]
            and (current.get("metadata") or {}).get("labels") == body["metadata"]["labels"]
        ):
            return "unchanged"
        body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion", "")
        self._call("PUT", f"{path}/{name}", body=body)
        return "updated"

    def list_cluster_role_bindings(self, *, label_selector: str = "") -> tuple[ClusterRoleBindingInfo, ...]:
        items = self.iter_objects(f"{RBAC_GROUP}/v1", "clusterrolebindings", label_selector=label_selector)
        return tuple(_binding_info(obj) for obj in items)

    # -- generic reads

    def list_objects(
        self,
        api_version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 500,
        continue_token: str = "",
    ) -> ObjectPage:
        """One page of `plural` in `api_version` ("v1", "apps/v1"); namespace None = all namespaces."""
        query: list[tuple[str, Any]] = [("limit", limit)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if continue_token:
            query.append(("continue", continue_token))
        data = self._call("GET", _collection_path(api_version, plural, namespace), query=query)
        meta = data.get("metadata") or {}
        kind = str(data.get("kind", "")).removesuffix("List")
        items = []
        for item in data.get("items") or []:
            # Items in a list carry no kind/apiVersion on a real server: add them so dicts stand alone.
            item.setdefault("apiVersion", api_version)
            if kind:
                item.setdefault("kind", kind)
            items.append(item)
        return ObjectPage(
            items=tuple(items),
            continue_token=str(meta.get("continue") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            remaining_item_count=meta.get("remainingItemCount"),
        )

    def iter_objects(
        self,
        api_version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Every object, following `continue` tokens page by page."""
        token = ""
        while True:
            page = self.list_objects(
                api_version,
                plural,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
            )
            yield from page.items
            if not page.continue_token:
                return
            token = page.continue_token

    def get_object(
        self, api_version: str, plural: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any]:
        return self._call("GET", f"{_collection_path(api_version, plural, namespace)}/{name}")


def connect(
    endpoint: str,
    ca_pem: str,
    auth: KubeAuth,
    *,
    tls_server_name: str | None = None,
    timeout: float = 10,
) -> KubeConnection:
    """A connection to `endpoint` verifying the server against `ca_pem` (and `tls_server_name`, if
    the endpoint is an IP that the certificate does not name). No kubeconfig file is involved."""
    config = k8s.Configuration()
    config.host = endpoint.rstrip("/")
    config.verify_ssl = True
    fds: list[int] = []
    try:
        fds.append(_memfd("ca", ca_pem))
        config.ssl_ca_cert = f"/proc/self/fd/{fds[-1]}"
        if auth.token:
            config.api_key = {"authorization": f"Bearer {auth.token}"}
        else:
            fds.append(_memfd("cert", auth.cert_pem or ""))
            config.cert_file = f"/proc/self/fd/{fds[-1]}"
            fds.append(_memfd("key", auth.key_pem or ""))
            config.key_file = f"/proc/self/fd/{fds[-1]}"
        if tls_server_name:
            config.tls_server_name = tls_server_name
        config.retries = False
        api_client = k8s.ApiClient(config)
    except Exception:
        for fd in fds:
            os.close(fd)
        raise
    return KubeConnection(api_client, fds, timeout)
