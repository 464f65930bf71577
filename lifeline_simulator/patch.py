"""PATCH bodies: JSON merge patch (RFC 7386), strategic merge (merge by patch key), JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

from lifeline_simulator.errors import ApiError

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Lists Kubernetes merges element-wise under strategic merge, with their patch merge key.
STRATEGIC_LIST_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "tolerations": "key",
    "ports": "containerPort",
    "hostAliases": "ip",
}


def merge_patch(target: Any, patch: Any, *, strategic: bool = False, key: str = "") -> Any:
    """Apply a merge patch; with `strategic`, known lists merge element-wise on their merge key."""
    if not isinstance(patch, dict):
        if strategic and isinstance(patch, list) and isinstance(target, list) and key in STRATEGIC_LIST_KEYS:
            return _merge_list(target, patch, STRATEGIC_LIST_KEYS[key])
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if strategic and name.startswith("$"):
            continue
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value, strategic=strategic, key=name)
    return result


def _merge_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if not all(isinstance(item, dict) and merge_key in item for item in [*target, *patch]):
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(item) for item in target]
    for item in patch:
        index = next((i for i, old in enumerate(merged) if old[merge_key] == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = merge_patch(merged[index], item, strategic=True)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f'json patch: path "{path}" must start with "/"')
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ApiError(422, f'json patch: path "{path}" does not exist')
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise ApiError(422, f'json patch: path "{path}" does not exist')


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ApiError(422, f'json patch: cannot remove "{path}": it does not exist')


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, f'json patch: index in "{path}" is out of range')
    else:
        raise ApiError(422, f'json patch: "{path}" is not inside an object or array')
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations; any failing operation rejects the whole patch."""
    if not isinstance(operations, list):
        raise ApiError(400, "json patch: the body must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, f"json patch: operation {number} needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise ApiError(400, f"json patch: operation {number} ({kind}) needs 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise ApiError(400, f"json patch: operation {number} ({kind}) needs 'from'")
            value = _remove(doc, op["from"]) if kind == "move" else copy.deepcopy(_get(doc, op["from"]))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise ApiError(422, f'json patch: test failed at "{path}"')
        else:
            raise ApiError(400, f"json patch: unknown operation {kind!r} in operation {number}")
    return doc
