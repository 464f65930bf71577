"""Load Kubernetes manifests: multi-document YAML, or a `List` as `kubectl get ... -o yaml` prints it.

Every problem is reported as a `ManifestError` naming the document (1-based, as a person counts
`---` separated documents) and, inside a List, the item index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


class ManifestError(ValueError):
    """A manifest document that cannot be used; the message names the document and the reason."""

    def __init__(self, source: str, document: int, reason: str, item: int | None = None) -> None:
        self.source = source
        self.document = document
        self.item = item
        self.reason = reason
        where = f"document {document}" + (f", item {item}" if item is not None else "")
        super().__init__(f"{source}: {where}: {reason}")


def load_manifest_file(path: Path) -> list[dict[str, Any]]:
    """Read and validate every object in `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return load_manifests(text, source=str(path))


def load_manifests(text: str, *, source: str = "<manifests>") -> list[dict[str, Any]]:
    """Parse YAML (or JSON) text into a flat list of Kubernetes objects, Lists expanded."""
    return list(iter_manifests(text, source=source))


def iter_manifests(text: str, *, source: str = "<manifests>") -> Iterator[dict[str, Any]]:
    document = 0
    loader = yaml.safe_load_all(text)
    while True:
        document += 1
        try:
            data = next(loader)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ManifestError(source, document, f"invalid YAML{at}: {problem}") from None
        if data is None:
            continue  # an empty document (a trailing `---`) is allowed
        if not isinstance(data, dict):
            raise ManifestError(
                source, document, f"expected a Kubernetes object (a mapping), got {type(data).__name__}"
            )
        kind = data.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in data:
            items = data.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(source, document, "`items` of a List must be a sequence")
            for index, item in enumerate(items, start=1):
                yield _validated(item, source, document, index)
        else:
            yield _validated(data, source, document, None)


def _validated(obj: Any, source: str, document: int, item: int | None) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ManifestError(source, document, f"expected a mapping, got {type(obj).__name__}", item)
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(source, document, "missing `kind`", item)
    if not isinstance(obj.get("apiVersion"), str):
        raise ManifestError(source, document, f"{kind} is missing `apiVersion`", item)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise ManifestError(source, document, f"{kind} is missing `metadata`", item)
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(source, document, f"{kind} is missing `metadata.name`", item)
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ManifestError(source, document, f"{kind} {name}: `metadata.namespace` must be a string", item)
    for field in ("spec", "status"):
        value = obj.get(field)
        if value is not None and not isinstance(value, dict):
            raise ManifestError(source, document, f"{kind} {name}: `{field}` must be a mapping", item)
    return obj
