"""Cluster state from Kubernetes manifests: multi-document YAML, or a `List` as `kubectl get -o yaml` prints.

Every document is checked before anything is loaded; an error names the document number and reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from lifeline_simulator.resources import BY_API_VERSION_KIND, RESOURCE_TYPES, ResourceType
from lifeline_simulator.store import validate_name


class ManifestError(ValueError):
    """An invalid manifest; the message says which document and why."""


def _where(source: str, number: int, item: int | None) -> str:
    where = f"{source}: document {number}"
    return f"{where}, item {item}" if item is not None else where


def _check(obj: Any, where: str) -> tuple[ResourceType, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a mapping with apiVersion and kind, got {type(obj).__name__}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        raise ManifestError(f"{where}: apiVersion and kind are required")
    rtype = BY_API_VERSION_KIND.get((str(api_version), str(kind)))
    if rtype is None:
        known = sorted({f"{r.api_version} {r.kind}" for r in RESOURCE_TYPES})
        raise ManifestError(
            f"{where}: {kind} in {api_version} is not served by the simulator (it serves: {', '.join(known)})"
        )
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ManifestError(f"{where}: {kind} has no metadata.name")
    reason = validate_name(rtype, str(meta["name"]))
    if reason:
        raise ManifestError(f"{where}: {kind} name {meta['name']!r} is invalid: {reason}")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            raise ManifestError(f"{where}: metadata.{field} must map strings to strings")
    obj = copy.deepcopy(obj)
    obj["metadata"] = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    if rtype.namespaced:
        obj["metadata"].setdefault("namespace", "default")
    else:
        obj["metadata"].pop("namespace", None)
    return rtype, obj


def parse_documents(
    documents: Iterable[Any], source: str = "manifests"
) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Validate documents (Lists expanded); raise ManifestError naming the first bad one."""
    out: list[tuple[ResourceType, dict[str, Any]]] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for number, doc in enumerate(documents, start=1):
        if doc is None:
            continue
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{_where(source, number, None)}: items must be a list")
            checked = [_check(item, _where(source, number, i)) for i, item in enumerate(items)]
        else:
            checked = [_check(doc, _where(source, number, None))]
        for rtype, obj in checked:
            key = (rtype.group, rtype.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if key in seen:
                raise ManifestError(
                    f"{_where(source, number, None)}: {rtype.kind} {obj['metadata']['name']!r} "
                    f"is already defined in {seen[key]}"
                )
            seen[key] = f"document {number}"
            out.append((rtype, obj))
    return out


def load_manifests(
    source: Path | str | Iterable[dict[str, Any]],
) -> list[tuple[ResourceType, dict[str, Any]]]:
    """Read manifests from a file path (YAML or JSON) or take a sequence of dicts."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            number = text[: mark.index].count("\n---") + 1 if mark is not None else "?"
            line = f" (line {mark.line + 1})" if mark is not None else ""
            raise ManifestError(f"{path}: document {number}{line}: not valid YAML: {exc}") from None
        return parse_documents(documents, str(path))
    return parse_documents(list(source))
