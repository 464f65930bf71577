"""Request handling independent of the transport: authenticate, route, authorize, run the verb."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from lifeline_simulator import fieldvalidation, impersonation, openapi, protobuf, subresources, views, watch
from lifeline_simulator.authn import AuthenticationFailed, Identity, verify_eks_token
from lifeline_simulator.errors import ApiError, invalid
from lifeline_simulator.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, json_patch, merge_patch
from lifeline_simulator.pki import CertificateRejected
from lifeline_simulator.rbac import Attributes
from lifeline_simulator.resources import VIRTUAL, ResourceType, find

if TYPE_CHECKING:
    from lifeline_simulator.cluster import SimulatedCluster

log = logging.getLogger("lifeline.simulator")

PUBLIC_PATHS = frozenset({"/version", "/version/", "/healthz", "/livez", "/readyz"})
ANONYMOUS = Identity("system:anonymous", ("system:unauthenticated",), method="anonymous")
HEALTH_CHECKS = (
    "ping",
    "log",
    "etcd",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
)
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_VERB_BY_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""
    peer_certificate: bytes | None = None
    header_list: tuple[tuple[str, str], ...] = ()  # every header line, repeated ones included

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}

    def header(self, name: str) -> str:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), "")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (a watch): chunks written as they come; `b""` is a heartbeat, not the end.
    stream: Iterator[bytes] | None = None


@dataclass(frozen=True)
class Route:
    rtype: ResourceType
    namespace: str
    name: str
    subresource: str


class Api:
    """One simulated kube-apiserver's request logic."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        self.cluster = cluster

    # ------------------------------------------------------------------ entry point

    def handle(self, request: Request) -> Response:
        try:
            response = self._handle(request)
            if request.method != "GET" and response.status < 400:
                self.cluster.controllers.settle()
            return response
        except ApiError as exc:
            return self._document(request, exc.status(), exc.code)
        except Exception:  # a bug must answer 500, not kill the connection thread
            log.exception("simulator: unhandled error for %s %s", request.method, request.path)
            return self._document(request, ApiError(500, "internal error in the simulator").status(), 500)

    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/-/"):
            return self._control(request, path)
        if path in ("/healthz", "/livez", "/readyz"):
            if "verbose" not in request.query:
                return Response(200, b"ok", "text/plain; charset=utf-8")
            checks = HEALTH_CHECKS + (("informer-sync", "shutdown") if path == "/readyz" else ())
            lines = [f"[+]{name} ok" for name in checks]
            lines.append(f"{path[1:]} check passed")
            return Response(200, ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8")
        identity = self.authenticate(request)
        if path in ("/version", "/version/") or request.path == "/version/":
            return self._document(request, self.cluster.version_info())
        if identity is ANONYMOUS:
            raise ApiError(401, "Unauthorized")
        header_lines = request.header_list or tuple(request.headers.items())
        if impersonation.requested(header_lines):
            identity = impersonation.impersonate(identity, header_lines, self._may)
        self.cluster.collect_garbage()
        if path in ("/api", "/apis") or (path.startswith(("/api/", "/apis/")) and path.count("/") <= 3):
            discovery = self._discovery(path)
            if discovery is not None:
                self._authorize(identity, Attributes(verb="get", path=request.path))
                return self._document(request, discovery)
        if path == "/openapi" or path.startswith("/openapi/"):
            self._authorize(identity, Attributes(verb="get", path=request.path))
            return self._openapi(request, path)
        route = self._route(path)
        return self._resource(request, identity, route)

    # ------------------------------------------------------------------ authentication

    def authenticate(self, request: Request) -> Identity:
        """x509 first, then the bearer token, as the API server's union authenticator does."""
        now = self.cluster.now()
        if request.peer_certificate:
            try:
                client = self.cluster.ca.verify_client(request.peer_certificate, now)
                return Identity(client.user, client.groups, method="x509").with_authenticated()
            except CertificateRejected as exc:
                log.info("simulator %s: client certificate rejected: %s", self.cluster.name, exc)
        authorization = request.header("Authorization")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            if not self.cluster.connected:
                log.info("simulator %s: IAM token refused: the Outpost is disconnected", self.cluster.name)
                raise ApiError(401, "Unauthorized")
            try:
                identity = verify_eks_token(
                    token, self.cluster.cluster_uid, self.cluster.lookup_principal, now
                )
            except AuthenticationFailed as exc:
                log.info("simulator %s: bearer token rejected: %s", self.cluster.name, exc)
                raise ApiError(401, "Unauthorized") from None
            return identity.with_authenticated()
        if request.peer_certificate or authorization:
            raise ApiError(401, "Unauthorized")
        return ANONYMOUS

    def _may(self, identity: Identity, attrs: Attributes) -> bool:
        return self.cluster.authorizer.allowed(identity.user, identity.groups, attrs)

    def _authorize(self, identity: Identity, attrs: Attributes) -> None:
        if not self.cluster.authorizer.allowed(identity.user, identity.groups, attrs):
            if not attrs.is_resource:
                raise ApiError(
                    403, f'forbidden: User "{identity.user}" cannot {attrs.verb} path "{attrs.path}"'
                )
            from lifeline_simulator.errors import forbidden

            resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
            raise forbidden(
                identity.user, attrs.verb, resource, attrs.group, attrs.namespace or None, attrs.name
            )

    # ------------------------------------------------------------------ control and discovery

    def _control(self, request: Request, path: str) -> Response:
        if path == "/-/status" and request.method == "GET":
            return self._document(request, {"connected": self.cluster.connected, "name": self.cluster.name})
        if request.method != "POST" or path not in ("/-/disconnect", "/-/connect"):
            raise ApiError(404, f"no control endpoint {request.method} {path}")
        if path == "/-/disconnect":
            self.cluster.disconnect()
        else:
            self.cluster.connect()
        return self._document(request, {"connected": self.cluster.connected, "name": self.cluster.name})

    def _discovery(self, path: str) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        custom = self.cluster.custom_types()
        if custom and parts[0] == "apis":
            found = self._custom_discovery(parts, custom)
            if found is not None:
                return found
        if path == "/api":
            return views.api_versions(self.cluster.server_address)
        if path == "/apis":
            return views.api_group_list()
        if parts[0] == "api" and len(parts) == 2:
            return views.resource_list("", parts[1])
        if parts[0] == "apis" and len(parts) == 2:
            return views.api_group(parts[1])
        if parts[0] == "apis" and len(parts) == 3:
            return views.resource_list(parts[1], parts[2])
        return None

    @staticmethod
    def _custom_discovery(parts: list[str], custom: list[ResourceType]) -> dict[str, Any] | None:
        groups: dict[str, list[str]] = {}
        for r in custom:
            versions = groups.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)

        def group_doc(name: str, versions: list[str]) -> dict[str, Any]:
            entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            return {"name": name, "versions": entries, "preferredVersion": entries[0]}

        if len(parts) == 1:
            listing = views.api_group_list()
            listing["groups"] += [
                group_doc(g, v) for g, v in groups.items() if g not in views.served_groups()
            ]
            return listing
        if parts[1] not in groups or parts[1] in views.served_groups():
            return None
        if len(parts) == 2:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1], groups[parts[1]])}
        if len(parts) == 3 and parts[2] in groups[parts[1]]:
            resources = []
            for r in custom:
                if (r.group, r.version) != (parts[1], parts[2]):
                    continue
                entry: dict[str, Any] = {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                }
                if r.short_names:
                    entry["shortNames"] = list(r.short_names)
                if r.categories:
                    entry["categories"] = list(r.categories)
                resources.append(entry)
                resources += [
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind if sub == "status" else "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                    for sub in r.subresources
                ]
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{parts[1]}/{parts[2]}",
                "resources": resources,
            }
        return None

    def _openapi(self, request: Request, path: str) -> Response:
        version = self.cluster.kubernetes_version
        if path == "/openapi/v2":
            if "protobuf" in request.header("Accept"):
                return Response(200, openapi.v2_protobuf(version), OPENAPI_V2_PROTOBUF)
            return Response(200, openapi.v2_json(version))
        if path == "/openapi/v3":
            return self._document(request, openapi.v3_root(version))
        if path.startswith("/openapi/v3/"):
            body = openapi.v3_group_version_bytes(version, path[len("/openapi/v3/") :])
            if body is not None:
                headers = {"Etag": f'"{request.query.get("hash", "")}"'} if request.query.get("hash") else {}
                return Response(200, body, "application/json", headers)
        raise ApiError(404, "the server could not find the requested resource")

    def _route(self, path: str) -> Route:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = ""
        custom = self.cluster.find_custom
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = find(group, version, rest[2]) or custom(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        rtype = find(group, version, rest[0]) or custom(group, version, rest[0])
        if rtype is None or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        if rtype.namespaced is False and namespace:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and subresource not in rtype.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        return Route(rtype, namespace, name, subresource)

    # ------------------------------------------------------------------ resources

    def _verb(self, request: Request, route: Route) -> str:
        if request.method not in _VERB_BY_METHOD:
            raise ApiError(405, f"method {request.method} is not allowed")
        verb = _VERB_BY_METHOD[request.method]
        if request.method == "GET" and not route.name:
            verb = "watch" if request.query.get("watch") in ("1", "true") else "list"
        if request.method == "DELETE" and not route.name:
            verb = "deletecollection"
        if request.method == "POST" and route.name:
            raise ApiError(405, "POST is not allowed on a named object")
        if request.method in ("PUT", "PATCH") and not route.name:
            raise ApiError(405, f"{request.method} needs an object name")
        allowed = set(route.rtype.verbs) | ({"get", "patch", "update"} if route.subresource else set())
        if verb not in allowed:
            raise ApiError(405, f"{verb} is not supported on {route.rtype.plural}", reason="MethodNotAllowed")
        return verb

    def _resource(self, request: Request, identity: Identity, route: Route) -> Response:
        if route.subresource in subresources.CONTAINER_SUBRESOURCES | {"eviction", "binding"}:
            return self._pod_subresource(request, identity, route)
        verb = self._verb(request, route)
        rtype = route.rtype
        if route.subresource == "scale":
            self._authorize(
                identity, Attributes(verb, rtype.group, rtype.plural, "scale", route.namespace, route.name)
            )
            return self._scale(request, route, verb)
        self._authorize(
            identity,
            Attributes(verb, rtype.group, rtype.plural, route.subresource, route.namespace, route.name),
        )
        if request.query.get("dryRun"):
            raise ApiError(400, "dryRun is not supported by the simulator; nothing was changed")
        writes_or_reads_one = verb not in ("create", "list", "watch")
        needs_namespace = rtype.namespaced and route.namespace and writes_or_reads_one
        if needs_namespace and not self.cluster.store.namespace_exists(route.namespace):
            raise ApiError(404, f'namespaces "{route.namespace}" not found', details={"kind": "namespaces"})
        if verb == "create" and rtype.plural in VIRTUAL:
            return self._document(request, self._review(rtype.plural, identity, self._body(request)), 201)
        if verb in ("list", "watch"):
            return self._list(request, route, watch=verb == "watch")
        if verb == "get":
            obj = self.cluster.store.get(rtype, route.namespace, route.name)
            return self._object(request, rtype, obj)
        if verb == "create":
            obj, warnings = self._validated(request, route, self._body(request, rtype))
            created = self.cluster.create_object(rtype, route.namespace, obj, identity)
            return self._warn(self._document(request, created, 201), warnings)
        if verb == "update":
            obj, warnings = self._validated(request, route, self._body(request, rtype))
            return self._warn(
                self._document(request, self.cluster.replace_object(route, obj, identity)), warnings
            )
        if verb == "patch":
            patched, warnings = self._patch(request, route, identity)
            return self._warn(self._document(request, patched), warnings)
        if verb == "delete":
            deleted = self.cluster.delete_object(route)
            return self._document(request, deleted)
        raise ApiError(405, f"{verb} is not supported by the simulator on {rtype.plural}")

    def _pod_subresource(self, request: Request, identity: Identity, route: Route) -> Response:
        verb = "get" if request.method == "GET" else "create"
        if route.subresource in ("eviction", "binding") and request.method != "POST":
            raise ApiError(405, f"{request.method} is not supported on pods/{route.subresource}")
        rtype = route.rtype
        self._authorize(
            identity,
            Attributes(verb, rtype.group, rtype.plural, route.subresource, route.namespace, route.name),
        )
        self.cluster.store.get(rtype, route.namespace, route.name)  # 404 for a missing pod first
        if route.subresource in subresources.CONTAINER_SUBRESOURCES:
            raise subresources.no_containers(route.subresource)
        if route.subresource == "binding":
            raise ApiError(403, "pods/binding is reserved for the simulator's scheduler")
        body = self._body(request)
        if not isinstance(body, dict) or body.get("kind") != "Eviction":
            raise ApiError(400, "the body of pods/eviction must be a policy/v1 Eviction")
        self.cluster.evict_pod(route.namespace, route.name)
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return self._document(request, status, 201)

    def _scale(self, request: Request, route: Route, verb: str) -> Response:
        store, rtype = self.cluster.store, route.rtype
        current = store.get(rtype, route.namespace, route.name)
        scale = subresources.to_scale(current)
        if verb == "get":
            return self._document(request, scale)
        body = self._body(request)
        if verb == "patch":
            content_type = request.header("Content-Type").split(";")[0].strip()
            if content_type == JSON_PATCH:
                wanted = json_patch(scale, body)
            elif isinstance(body, dict):
                wanted = merge_patch(scale, body, strategic=content_type == STRATEGIC_MERGE_PATCH)
            else:
                raise ApiError(400, "a merge patch must be a JSON object")
        else:
            wanted = body
        wanted, warnings = self._validated(request, route, wanted, duplicates_from=body)
        replicas = subresources.replicas_from_scale(wanted, rtype.kind, route.name)
        current.setdefault("spec", {})["replicas"] = replicas
        updated = self.cluster.replace_object(
            Route(rtype, route.namespace, route.name, ""), current, ANONYMOUS
        )
        return self._warn(self._document(request, subresources.to_scale(updated)), warnings)

    def _list(self, request: Request, route: Route, *, watch: bool) -> Response:
        query = request.query
        if watch:
            return self._watch(request, route)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, f"limit: invalid value {query.get('limit')!r}") from None
        result = self.cluster.store.list(
            route.rtype,
            route.namespace or None,
            label_selector=query.get("labelSelector", ""),
            field_selector=query.get("fieldSelector", ""),
            limit=0 if watch else limit,
            continue_token=query.get("continue", ""),
        )
        if self._wants_table(request):
            body = views.table(
                route.rtype,
                result.items,
                self.cluster.now(),
                include_object=query.get("includeObject", "Metadata"),
                resource_version=result.resource_version,
                continue_token=result.continue_token,
                remaining=result.remaining,
            )
            return self._document(request, body)
        doc = views.list_document(
            route.rtype, result.items, result.resource_version, result.continue_token, result.remaining
        )
        return self._document(request, doc)

    def _watch(self, request: Request, route: Route) -> Response:
        rtype = route.rtype
        include = request.query.get("includeObject", "Metadata")

        def as_table(obj: dict[str, Any]) -> dict[str, Any]:
            rv = obj["metadata"].get("resourceVersion", "")
            return views.table(rtype, [obj], self.cluster.now(), include_object=include, resource_version=rv)

        render = as_table if self._wants_table(request) else (lambda obj: obj)
        query = {key: str(value) for key, value in request.query.items()}
        stream = watch.open_watch(self.cluster.store, rtype, route.namespace or None, query, render)
        return Response(200, b"", "application/json", stream=stream)

    def _object(self, request: Request, rtype: ResourceType, obj: dict[str, Any]) -> Response:
        if self._wants_table(request):
            body = views.table(
                rtype,
                [obj],
                self.cluster.now(),
                include_object=request.query.get("includeObject", "Metadata"),
                resource_version=obj["metadata"].get("resourceVersion", ""),
            )
            return self._document(request, body)
        return self._document(request, obj)

    def _validated(
        self, request: Request, route: Route, obj: Any, *, duplicates_from: Any = None, decoding: bool = True
    ) -> tuple[Any, list[str]]:
        """The body checked against the kind's schema (fieldValidation), unknown fields dropped."""
        mode = fieldvalidation.directive(request.query)
        # Custom kinds are stored as sent: no structural-schema validation (see `crds`).
        if not isinstance(obj, dict) or route.rtype.plural in VIRTUAL or route.rtype.custom:
            return obj, []
        scale = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        kind = scale if route.subresource == "scale" else {}
        duplicates = fieldvalidation.duplicate_keys(obj if duplicates_from is None else duplicates_from)
        return fieldvalidation.check(
            route.rtype,
            obj,
            mode,
            self.cluster.kubernetes_version,
            duplicates=duplicates,
            decoding=decoding,
            **kind,
        )

    @staticmethod
    def _warn(response: Response, warnings: list[str]) -> Response:
        if warnings:
            quoted = ['299 - "{}"'.format(w.replace("\\", "\\\\").replace('"', '\\"')) for w in warnings]
            response.headers["Warning"] = ", ".join(quoted)
        return response

    def _patch(self, request: Request, route: Route, identity: Identity) -> tuple[dict[str, Any], list[str]]:
        content_type = request.header("Content-Type").split(";")[0].strip()
        current = self.cluster.store.get(route.rtype, route.namespace, route.name)
        patch_body = self._body(request)
        if content_type == JSON_PATCH:
            patched = json_patch(current, patch_body)
        elif content_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
            if not isinstance(patch_body, dict):
                raise ApiError(400, "a merge patch must be a JSON object")
            patched = merge_patch(current, patch_body, strategic=content_type == STRATEGIC_MERGE_PATCH)
        else:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: "
                f'{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH} (got "{content_type}")',
            )
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch did not produce an object")
        # A patch applies to the object as read; the resourceVersion in it is a precondition only if sent.
        sent_rv = (
            (patch_body.get("metadata") or {}).get("resourceVersion")
            if isinstance(patch_body, dict)
            else None
        )
        patched.setdefault("metadata", {})["resourceVersion"] = (
            sent_rv or current["metadata"]["resourceVersion"]
        )
        patched, warnings = self._validated(
            request, route, patched, duplicates_from=patch_body, decoding=False
        )
        return self.cluster.replace_object(route, patched, identity), warnings

    def _review(self, plural: str, identity: Identity, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the review must be a JSON object")
        spec = body.get("spec") or {}
        api_version = body.get("apiVersion") or "authorization.k8s.io/v1"
        if plural == "selfsubjectreviews":
            user_info: dict[str, Any] = {"username": identity.user, "groups": list(identity.groups)}
            if identity.uid:
                user_info["uid"] = identity.uid
            if identity.extra:
                user_info["extra"] = identity.extra
            return {
                "kind": "SelfSubjectReview",
                "apiVersion": body.get("apiVersion") or "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "status": {"userInfo": user_info},
            }
        if plural == "selfsubjectrulesreviews":
            namespace = spec.get("namespace") or ""
            rules = self.cluster.authorizer.rules_for(identity.user, identity.groups, namespace)
            if "system:masters" in identity.groups:
                rules = [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ]
            return {
                "kind": "SelfSubjectRulesReview",
                "apiVersion": api_version,
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": {
                    "resourceRules": [
                        {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if k in r}
                        for r in rules
                        if "nonResourceURLs" not in r
                    ],
                    "nonResourceRules": [
                        {"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                        for r in rules
                        if "nonResourceURLs" in r
                    ],
                    "incomplete": False,
                },
            }
        user, groups = identity.user, identity.groups
        if plural == "subjectaccessreviews":
            # About someone else: exactly the user and groups given (the API server adds neither
            # system:authenticated nor anything else), evaluated by the same authorizer.
            user = spec.get("user") or ""
            raw_groups = spec.get("groups") or []
            if not isinstance(user, str) or not isinstance(raw_groups, list):
                raise ApiError(400, "spec.user must be a string and spec.groups a list of strings")
            if not all(isinstance(g, str) for g in raw_groups):
                raise ApiError(400, "spec.groups must be a list of strings")
            groups = tuple(raw_groups)
            if not user and not groups:
                raise _invalid_review("spec.user", "at least one of user or group must be specified", user)
        resource_attrs = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if resource_attrs and non_resource and plural == "subjectaccessreviews":
            raise _invalid_review(
                "spec.nonResourceAttributes",
                "cannot be specified in combination with resourceAttributes",
                non_resource,
            )
        if resource_attrs:
            attrs = Attributes(
                verb=resource_attrs.get("verb", ""),
                group=resource_attrs.get("group", ""),
                resource=resource_attrs.get("resource", ""),
                subresource=resource_attrs.get("subresource", ""),
                namespace=resource_attrs.get("namespace", ""),
                name=resource_attrs.get("name", ""),
            )
        elif non_resource:
            attrs = Attributes(verb=non_resource.get("verb", ""), path=non_resource.get("path", ""))
        elif plural == "subjectaccessreviews":
            raise _invalid_review(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                None,
            )
        else:
            raise ApiError(422, "spec.resourceAttributes or spec.nonResourceAttributes is required")
        allowed = self.cluster.authorizer.allowed(user, groups, attrs)
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = "allowed by RBAC" if "system:masters" not in groups else "system:masters"
        return {
            "kind": "SubjectAccessReview" if plural == "subjectaccessreviews" else "SelfSubjectAccessReview",
            "apiVersion": api_version,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    # ------------------------------------------------------------------ encoding

    def _body(self, request: Request, rtype: ResourceType | None = None) -> Any:
        if not request.body:
            raise ApiError(400, "the request needs a body")
        content_type = request.header("Content-Type").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            body = protobuf.decode(request.body)
            return self._check_kind(body, rtype)
        if content_type not in (
            "",
            "application/json",
            "application/yaml",
            JSON_PATCH,
            MERGE_PATCH,
            STRATEGIC_MERGE_PATCH,
        ):
            raise ApiError(
                415,
                f"the body of the request was in an unknown format ({content_type or 'none'}) - "
                "accepted media "
                "types include: application/json, application/yaml",
            )
        try:
            if content_type in ("application/yaml", "application/apply-patch+yaml"):
                body = yaml.safe_load(request.body)
            else:
                body = fieldvalidation.loads(request.body)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"the request body is not valid JSON or YAML: {exc}") from None
        return self._check_kind(body, rtype)

    @staticmethod
    def _check_kind(body: Any, rtype: ResourceType | None) -> Any:
        if rtype is not None:
            if not isinstance(body, dict):
                raise ApiError(400, f"the body must be a {rtype.kind} object")
            kind, api_version = body.get("kind"), body.get("apiVersion")
            if (kind and kind != rtype.kind) or (api_version and api_version != rtype.api_version):
                raise ApiError(
                    400,
                    f"the API version in the data ({api_version}) does not match the expected API version "
                    f"({rtype.api_version}), or kind {kind} is not {rtype.kind}",
                )
        return body

    @staticmethod
    def _wants_table(request: Request) -> bool:
        accept = request.header("Accept")
        return any(
            "as=Table" in part and "g=meta.k8s.io" in part and "v=v1" in part.replace("v=v1beta1", "")
            for part in accept.split(",")
        )

    def _document(self, request: Request, body: Any, status: int = 200) -> Response:
        accept = request.header("Accept")
        if "application/yaml" in accept and "application/json" not in accept.split(",")[0]:
            return Response(status, yaml.safe_dump(body, sort_keys=False).encode(), "application/yaml")
        return Response(status, json.dumps(body).encode(), "application/json")


def _invalid_review(field: str, message: str, value: Any) -> ApiError:
    """The API server's 422 for a SubjectAccessReview it cannot evaluate."""
    shown = "null" if value is None else json.dumps(value)
    return invalid(
        "SubjectAccessReview",
        "",
        [(field, f"Invalid value: {shown}: {message}")],
        group="authorization.k8s.io",
    )
