"""Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`) against Kubernetes' schemas.

As kube-apiserver decodes into typed objects, fields the schema does not declare are dropped in every
mode; Strict refuses the request (400 `strict decoding error: unknown field "spec.bogus"`), Warn (the
default) answers with one `Warning: 299` header per field, Ignore says nothing. Duplicate JSON keys are
found while parsing (`duplicate_keys`) and reported the same way.
"""

from __future__ import annotations

import json
from typing import Any

from lifeline_simulator import openapi
from lifeline_simulator.errors import ApiError
from lifeline_simulator.resources import ResourceType

DIRECTIVES = ("Strict", "Warn", "Ignore")


class _Pairs(dict[str, Any]):
    """A JSON object that remembers which keys it saw twice."""

    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = _Pairs()
    out.duplicates = []
    for key, value in pairs:
        if key in out and key not in out.duplicates:
            out.duplicates.append(key)
        out[key] = value
    return out


def loads(raw: bytes) -> Any:
    """json.loads that records duplicate keys (read them back with `duplicate_keys`)."""
    return json.loads(raw, object_pairs_hook=_pairs_hook)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def duplicate_keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", []):
            found.append(_join(path, key))
        for key, value in node.items():
            found += duplicate_keys(value, _join(path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += duplicate_keys(value, f"{path}[{i}]")
    return found


def directive(query: dict[str, str]) -> str:
    value = query.get("fieldValidation", "") or "Warn"
    if value not in DIRECTIVES:
        raise ApiError(
            400,
            f'fieldValidation parameter unsupported: "{value}"; valid values are: Ignore, Warn, Strict',
        )
    return value


def _resolve(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while True:
        ref = schema.get("$ref")
        if not isinstance(ref, str) and schema.get("allOf"):
            ref = schema["allOf"][0].get("$ref")
        if not isinstance(ref, str) or seen > 50:
            return schema
        schema = defs.get(ref.rsplit("/", 1)[-1], {})
        seen += 1


def prune(defs: dict[str, Any], schema: dict[str, Any], node: Any, path: str, unknown: list[str]) -> Any:
    """`node` without the fields `schema` does not declare; their paths are appended to `unknown`."""
    schema = _resolve(defs, schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return node
    if isinstance(node, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if isinstance(props, dict):
            kept: dict[str, Any] = {}
            for key, value in node.items():
                if key in props:
                    kept[key] = prune(defs, props[key], value, _join(path, key), unknown)
                else:
                    unknown.append(_join(path, key))
            return kept
        if isinstance(extra, dict):
            return {k: prune(defs, extra, v, _join(path, k), unknown) for k, v in node.items()}
        return node
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [prune(defs, schema["items"], v, f"{path}[{i}]", unknown) for i, v in enumerate(node)]
    return node


def check(
    rtype: ResourceType,
    obj: dict[str, Any],
    mode: str,
    kubernetes_version: str,
    *,
    duplicates: list[str] | None = None,
    kind: str = "",
    group: str = "",
    version: str = "",
    decoding: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """(object without unknown fields, warnings). Strict raises 400 with the API server's message."""
    minor = openapi.schema_minor(kubernetes_version)
    defs = openapi.definitions(minor)
    kind, group, version = kind or rtype.kind, group or rtype.group, version or rtype.version
    name = openapi.definition_name(minor, group, version, kind)
    schema = defs.get(name)
    if schema is None:
        return obj, []
    unknown: list[str] = []
    pruned = prune(defs, schema, obj, "", unknown)
    problems = [f'unknown field "{p}"' for p in unknown]
    problems = [f'duplicate field "{p}"' for p in duplicates or []] + problems
    if problems and mode == "Strict":
        message = "strict decoding error: " + ", ".join(problems)
        if decoding:
            message = f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
        raise ApiError(400, message)
    return pruned, problems if mode == "Warn" else []
