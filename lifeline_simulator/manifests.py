"""Cluster state from Kubernetes manifests, read by the one loader `lifeline check` uses.

`app.integrations.kube.manifests` reads the file (UTF-8), parses the documents and expands Lists,
numbering documents and items from 1; this module adds what the simulated API server demands of
an object (a kind it serves, a valid name, no duplicates). Nothing is loaded unless all is valid.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.integrations.kube.manifests import (
    Entry,
    ManifestError,
    entries,
    parse_documents,
    read_manifest_text,
)
from lifeline_simulator.resources import BY_API_VERSION_KIND, RESOURCE_TYPES, ResourceType
from lifeline_simulator.store import validate_name

__all__ = ["ManifestError", "load_manifests"]


def _check(entry: Entry, source: str) -> tuple[ResourceType, dict[str, Any]]:
    obj = entry.obj
    if not isinstance(obj, dict):
        raise entry.error(source, f"expected a mapping with apiVersion and kind, got {type(obj).__name__}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        raise entry.error(source, "apiVersion and kind are required")
    rtype = BY_API_VERSION_KIND.get((str(api_version), str(kind)))
    if rtype is None:
        known = sorted({f"{r.api_version} {r.kind}" for r in RESOURCE_TYPES})
        raise entry.error(
            source, f"{kind} in {api_version} is not served by the simulator (it serves: {', '.join(known)})"
        )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise entry.error(source, f"{kind} has no metadata.name")
    reason = validate_name(rtype, str(meta["name"]))
    if reason:
        raise entry.error(source, f"{kind} name {meta['name']!r} is invalid: {reason}")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            raise entry.error(source, f"metadata.{field} must map strings to strings")
    obj = copy.deepcopy(obj)
    obj["metadata"] = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    if rtype.namespaced:
        obj["metadata"].setdefault("namespace", "default")
    else:
        obj["metadata"].pop("namespace", None)
    return rtype, obj


def _served(documents: Iterable[tuple[int, Any]], source: str) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Every object checked (Lists expanded); ManifestError names the first bad one."""
    out: list[tuple[ResourceType, dict[str, Any]]] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for entry in entries(documents, source=source):
        rtype, obj = _check(entry, source)
        key = (rtype.group, rtype.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in seen:
            raise ManifestError(
                source,
                entry.document,
                f"{rtype.kind} {obj['metadata']['name']!r} is already defined in {seen[key]}",
            )
        seen[key] = f"document {entry.document}"
        out.append((rtype, obj))
    return out


def load_manifests(
    source: Path | str | Iterable[dict[str, Any]],
) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Read manifests from a file path (YAML or JSON) or take a sequence of dicts."""
    if isinstance(source, str | Path):
        path = Path(source)
        text = read_manifest_text(path)
        return _served(parse_documents(text, source=str(path)), str(path))
    return _served(enumerate(source, start=1), "manifests")
