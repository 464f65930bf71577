"""OpenAPI documents (`/openapi/v2`, `/openapi/v3`) built from Kubernetes' own definitions.

The schemas come from `kubernetes-validate`, which ships kube-openapi's definitions for Kubernetes
1.25-1.37 as JSON Schema 2020-12. They are converted back to the Swagger 2.0 / OpenAPI 3.0 shapes
kube-apiserver serves (nullable type lists collapsed, IntOrString as `int-or-string`, v3 refs wrapped in
`allOf`), restricted to what the simulator serves. `paths` are generated from the served resource types,
each write operation with the `fieldValidation` query parameter kubectl looks for before it sends
`fieldValidation=Strict`. kubectl fetches `/openapi/v2` as gnostic protobuf, so `v2_protobuf` encodes it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.resources
import json
from collections.abc import Iterable
from typing import Any

import yaml

from lifeline_simulator.resources import RESOURCE_TYPES, ResourceType

OLDEST, NEWEST = 25, 37
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
ALWAYS = ("io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.policy.v1.Eviction")


def schema_minor(kubernetes_version: str) -> int:
    """The kubernetes-validate schema set used for a server version (clamped to what the package ships)."""
    minor = int(kubernetes_version.split(".")[1].rstrip("+"))
    return max(OLDEST, min(NEWEST, minor))


@functools.lru_cache(maxsize=4)
def _raw_definitions(minor: int) -> dict[str, Any]:
    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    text = (root / f"v1.{minor}.0-local" / "_definitions.json").read_text()
    defs: dict[str, Any] = json.loads(text)["$defs"]
    return defs


def _to_swagger(node: Any, ref_prefix: str, *, v3: bool, parent_key: str = "") -> Any:
    if isinstance(node, list):
        return [_to_swagger(x, ref_prefix, v3=v3) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "properties":
            out[key] = {
                name: _to_swagger(sub, ref_prefix, v3=v3, parent_key=name) for name, sub in value.items()
            }
        elif key.startswith("x-"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _to_swagger(value, ref_prefix, v3=v3)
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].replace("#/$defs/", ref_prefix)
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if len(types) == 1 else types
    one_of = out.get("oneOf")
    if isinstance(one_of, list) and all(isinstance(x, dict) and set(x) == {"type"} for x in one_of):
        kinds = {x["type"] for x in one_of}
        out.pop("oneOf")
        out["type"] = "string"
        if "integer" in kinds:
            out["format"] = "int-or-string"
    if parent_key in ("apiVersion", "kind"):
        out.pop("enum", None)
    if v3 and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _gvks(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (g.get("group", ""), g.get("version", ""), g.get("kind", ""))
        for g in schema.get("x-kubernetes-group-version-kind") or []
    ]


@functools.lru_cache(maxsize=4)
def _by_gvk(minor: int) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in _raw_definitions(minor).items():
        for gvk in _gvks(schema):
            out.setdefault(gvk, name)
    return out


def definition_name(minor: int, group: str, version: str, kind: str) -> str:
    """The definition name of a kind (a synthetic one for kinds Kubernetes does not define, e.g. CRDs')."""
    return _by_gvk(minor).get((group, version, kind)) or f"io.simulator.{group or 'core'}.{version}.{kind}"


def _loose_schema(group: str, version: str, kind: str) -> dict[str, Any]:
    """For kinds that are CRDs in a real cluster (VolumeSnapshotClass): metadata typed, the rest free."""
    return {
        "type": "object",
        "description": f"{kind} ({group}/{version}), stored as sent.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"$ref": f"#/$defs/{META}ObjectMeta"},
        },
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}],
    }


def _roots(minor: int, rtypes: Iterable[ResourceType]) -> dict[str, dict[str, Any]]:
    """Definition name -> raw schema, for every served kind, its List and the always-needed kinds."""
    raw = _raw_definitions(minor)
    out: dict[str, dict[str, Any]] = {}
    for r in rtypes:
        for kind in (r.kind, f"{r.kind}List"):
            name = definition_name(minor, r.group, r.version, kind)
            if name in raw:
                out[name] = raw[name]
            elif kind == r.kind:
                out[name] = _loose_schema(r.group, r.version, kind)
    for name in ALWAYS:
        out[name] = raw[name]
    for name, schema in raw.items():
        if name.startswith(META):
            out[name] = schema
    return out


def _closure(minor: int, roots: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    raw = _raw_definitions(minor)
    out = dict(roots)
    pending = list(roots.values())
    while pending:
        node = pending.pop()
        stack: list[tuple[Any, bool]] = [(node, False)]
        while stack:
            item, is_properties = stack.pop()
            if isinstance(item, dict):
                ref = item.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    name = ref[len("#/$defs/") :]
                    if name not in out and name in raw:
                        out[name] = raw[name]
                        pending.append(raw[name])
                # Extensions are skipped, but a property may be named x-... (JSONSchemaProps has them).
                stack.extend(
                    (v, k == "properties" and not is_properties)
                    for k, v in item.items()
                    if is_properties or not k.startswith("x-")
                )
            elif isinstance(item, list):
                stack.extend((x, False) for x in item)
    return out


@functools.lru_cache(maxsize=4)
def definitions(minor: int) -> dict[str, Any]:
    """Swagger 2.0 `definitions` for everything the simulator serves (cached per schema set)."""
    chosen = _closure(minor, _roots(minor, RESOURCE_TYPES))
    return {name: _to_swagger(chosen[name], "#/definitions/", v3=False) for name in sorted(chosen)}


# ---------------------------------------------------------------------------------------------- paths


def _param(name: str, where: str, description: str, *, v3: bool, required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "description": description, "uniqueItems": True}
    if required:
        param["required"] = True
    if v3:
        param["schema"] = {"type": "string", "uniqueItems": True}
    else:
        param["type"] = "string"
    return param


_FIELD_VALIDATION = (
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"
)


def _operation(
    r: ResourceType, action: str, verb: str, definition: str, *, v3: bool, sub: str = ""
) -> dict[str, Any]:
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    if sub == "scale":
        gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    op: dict[str, Any] = {
        "description": f"{action} {r.kind}{' ' + sub if sub else ''}",
        "operationId": f"{action}{r.version}{r.kind}{sub.title()}",
        "tags": [f"{r.group or 'core'}_{r.version}"],
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": [],
    }
    if verb in ("post", "put", "patch"):
        op["parameters"] = [
            _param("dryRun", "query", "When present, modifications should not be persisted.", v3=v3),
            _param("fieldManager", "query", "A name associated with the actor making these changes.", v3=v3),
            _param("fieldValidation", "query", _FIELD_VALIDATION, v3=v3),
        ]
    ref = ("#/components/schemas/" if v3 else "#/definitions/") + definition
    if v3:
        content = {"application/json": {"schema": {"$ref": ref}}}
        op["responses"] = {"200": {"description": "OK", "content": content}}
        if verb in ("post", "put", "patch"):
            op["requestBody"] = {"content": {"*/*": {"schema": {"$ref": ref}}}, "required": True}
    else:
        op["responses"] = {"200": {"description": "OK", "schema": {"$ref": ref}}}
        op["consumes"] = ["*/*"]
        op["produces"] = ["application/json", "application/yaml"]
    return op


def _paths_for(minor: int, r: ResourceType, *, v3: bool) -> dict[str, dict[str, Any]]:
    prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
    scope = f"{prefix}/namespaces/{{namespace}}" if r.namespaced else prefix
    item_def = definition_name(minor, r.group, r.version, r.kind)
    list_def = _by_gvk(minor).get((r.group, r.version, f"{r.kind}List"), item_def)
    collection: dict[str, Any] = {}
    item: dict[str, Any] = {}
    verbs = set(r.verbs)
    if "list" in verbs:
        collection["get"] = _operation(r, "list", "list", list_def, v3=v3)
    if "create" in verbs:
        collection["post"] = _operation(r, "create", "post", item_def, v3=v3)
    if "deletecollection" in verbs:
        collection["delete"] = _operation(r, "deletecollection", "deletecollection", META + "Status", v3=v3)
    if "get" in verbs:
        item["get"] = _operation(r, "read", "get", item_def, v3=v3)
    if "update" in verbs:
        item["put"] = _operation(r, "replace", "put", item_def, v3=v3)
    if "patch" in verbs:
        item["patch"] = _operation(r, "patch", "patch", item_def, v3=v3)
    if "delete" in verbs:
        item["delete"] = _operation(r, "delete", "delete", META + "Status", v3=v3)
    paths: dict[str, dict[str, Any]] = {}
    if collection:
        paths[f"{scope}/{r.plural}"] = collection
    if item:
        paths[f"{scope}/{r.plural}/{{name}}"] = item
    for sub in (s for s in r.subresources if s in ("status", "scale", "approval")):
        sub_def = "io.k8s.api.autoscaling.v1.Scale" if sub == "scale" else item_def
        paths[f"{scope}/{r.plural}/{{name}}/{sub}"] = {
            "get": _operation(r, "read", "get", sub_def, v3=v3, sub=sub),
            "put": _operation(r, "replace", "put", sub_def, v3=v3, sub=sub),
            "patch": _operation(r, "patch", "patch", sub_def, v3=v3, sub=sub),
        }
    if r.namespaced and "list" in verbs:
        paths[f"{prefix}/{r.plural}"] = {"get": _operation(r, "list", "list", list_def, v3=v3)}
    return paths


def _info(kubernetes_version: str) -> dict[str, str]:
    return {"title": "Kubernetes", "version": f"v{kubernetes_version}"}


@functools.lru_cache(maxsize=8)
def v2_document(kubernetes_version: str) -> dict[str, Any]:
    minor = schema_minor(kubernetes_version)
    paths: dict[str, Any] = {}
    for r in RESOURCE_TYPES:
        paths.update(_paths_for(minor, r, v3=False))
    return {
        "swagger": "2.0",
        "info": _info(kubernetes_version),
        "paths": dict(sorted(paths.items())),
        "definitions": definitions(minor),
    }


def group_version_path(r: ResourceType) -> str:
    return f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"


@functools.lru_cache(maxsize=64)
def v3_group_version(kubernetes_version: str, gv_path: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (`api/v1`, `apis/apps/v1`), or None."""
    minor = schema_minor(kubernetes_version)
    served = [r for r in RESOURCE_TYPES if group_version_path(r) == gv_path]
    if not served:
        return None
    chosen = _closure(minor, _roots(minor, served))
    paths: dict[str, Any] = {}
    for r in served:
        paths.update(_paths_for(minor, r, v3=True))
    schemas = {name: _to_swagger(chosen[name], "#/components/schemas/", v3=True) for name in sorted(chosen)}
    return {
        "openapi": "3.0.0",
        "info": _info(kubernetes_version),
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas},
    }


@functools.lru_cache(maxsize=64)
def v3_group_version_bytes(kubernetes_version: str, gv_path: str) -> bytes | None:
    doc = v3_group_version(kubernetes_version, gv_path)
    return None if doc is None else json.dumps(doc).encode()


@functools.lru_cache(maxsize=8)
def v3_root(kubernetes_version: str) -> dict[str, Any]:
    """`/openapi/v3`: one entry per group-version, its URL carrying the document's hash."""
    paths: dict[str, Any] = {}
    for gv in sorted({group_version_path(r) for r in RESOURCE_TYPES}):
        body = v3_group_version_bytes(kubernetes_version, gv) or b""
        digest = hashlib.sha512(body).hexdigest().upper()
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}


# ---------------------------------------------------------------------------------- v2 as protobuf
# gnostic's openapi_v2.Document (github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto), the form
# client-go's OpenAPISchema() asks for (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _str(number: int, value: str) -> bytes:
    return _bytes_field(number, value.encode()) if value else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _any(value: Any) -> bytes:
    return _str(2, yaml.safe_dump(value, default_flow_style=False).rstrip("\n") or "null")


def _named_any(name: str, value: Any) -> bytes:
    return _str(1, name) + _bytes_field(2, _any(value))


def _schema(s: dict[str, Any]) -> bytes:
    out = bytearray()
    out += _str(1, s.get("$ref", ""))
    out += _str(2, s.get("format", ""))
    out += _str(4, s.get("description", ""))
    for name in s.get("required") or []:
        out += _str(19, name)
    for value in s.get("enum") or []:
        out += _bytes_field(20, _any(value))
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes_field(21, _bytes_field(1, _schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes_field(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    types = s.get("type")
    if types:
        type_list = types if isinstance(types, list) else [types]
        out += _bytes_field(22, b"".join(_str(1, t) for t in type_list))
    if isinstance(s.get("items"), dict):
        out += _bytes_field(23, _bytes_field(1, _schema(s["items"])))
    for sub in s.get("allOf") or []:
        out += _bytes_field(24, _schema(sub))
    props = s.get("properties")
    if isinstance(props, dict):
        named = b"".join(
            _bytes_field(1, _str(1, name) + _bytes_field(2, _schema(sub))) for name, sub in props.items()
        )
        out += _bytes_field(25, named)
    for key, value in s.items():
        if key.startswith("x-"):
            out += _bytes_field(31, _named_any(key, value))
    return bytes(out)


def _query_parameter(p: dict[str, Any]) -> bytes:
    sub = _bool(1, bool(p.get("required"))) + _str(2, p["in"]) + _str(3, p.get("description", ""))
    sub += _str(4, p["name"]) + _str(6, p.get("type", "string")) + _bool(20, bool(p.get("uniqueItems")))
    non_body = _bytes_field(3, sub)
    return _bytes_field(1, _bytes_field(2, non_body))  # ParametersItem.parameter.non_body_parameter


def _operation_pb(op: dict[str, Any]) -> bytes:
    out = bytearray()
    for tag in op.get("tags") or []:
        out += _str(1, tag)
    out += _str(3, op.get("description", ""))
    out += _str(5, op.get("operationId", ""))
    for p in op.get("parameters") or []:
        out += _bytes_field(8, _query_parameter(p))
    responses = b""
    for code, response in (op.get("responses") or {}).items():
        body = _str(1, response.get("description", ""))
        if "schema" in response:
            body += _bytes_field(2, _bytes_field(1, _schema(response["schema"])))
        responses += _bytes_field(1, _str(1, code) + _bytes_field(2, _bytes_field(1, body)))
    out += _bytes_field(9, responses)
    for key, value in op.items():
        if key.startswith("x-"):
            out += _bytes_field(13, _named_any(key, value))
    return bytes(out)


_PATH_ITEM_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}


@functools.lru_cache(maxsize=8)
def v2_protobuf(kubernetes_version: str) -> bytes:
    doc = v2_document(kubernetes_version)
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    paths = b""
    for path, item in doc["paths"].items():
        item_pb = b"".join(
            _bytes_field(_PATH_ITEM_FIELDS[method], _operation_pb(op)) for method, op in item.items()
        )
        paths += _bytes_field(2, _str(1, path) + _bytes_field(2, item_pb))
    defs = b"".join(
        _bytes_field(1, _str(1, name) + _bytes_field(2, _schema(schema)))
        for name, schema in doc["definitions"].items()
    )
    return _str(1, "2.0") + _bytes_field(2, info) + _bytes_field(8, paths) + _bytes_field(9, defs)


@functools.lru_cache(maxsize=8)
def v2_json(kubernetes_version: str) -> bytes:
    return json.dumps(v2_document(kubernetes_version)).encode()
