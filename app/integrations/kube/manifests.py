"""Load Kubernetes manifests: multi-document YAML, or a `List` as `kubectl get ... -o yaml` prints it.

The one reader behind `lifeline check` and the simulator: files are UTF-8, and every problem is a
`ManifestError` naming the document and, inside a List, the item, both 1-based as a person counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from app.integrations.nesting import TooDeep, check_depth


class ManifestError(ValueError):
    """A manifest document that cannot be used; the message names the document and the reason."""

    def __init__(self, source: str, document: int | None, reason: str, item: int | None = None) -> None:
        self.source = source
        self.document = document
        self.item = item
        self.reason = reason
        where = "" if document is None else f"document {document}"
        where += f", item {item}" if item is not None else ""
        super().__init__(f"{source}: {where}: {reason}" if where else f"{source}: {reason}")


class Entry(NamedTuple):
    """One object as it stands in the text: its document, its item inside a List (else None)."""

    document: int
    item: int | None
    obj: Any

    def error(self, source: str, reason: str) -> ManifestError:
        return ManifestError(source, self.document, reason, self.item)


def read_manifest_text(path: Path) -> str:
    """The text of a manifest file, read as UTF-8 whatever the locale says."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ManifestError(str(path), None, f"cannot read: {exc.strerror}") from None


def load_manifest_file(path: Path) -> list[dict[str, Any]]:
    """Read and validate every object in `path`."""
    return load_manifests(read_manifest_text(path), source=str(path))


@dataclass
class ManifestReading:
    """What a lenient read found: every usable object, and one error per document or item that is not."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)


# A line that starts a YAML document (`---`, `--- !tag`, `--- {inline}`), at column 0.
_DOCUMENT_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
# A chunk before the first `---` that holds only directives and comments belongs to the next document.
_PREAMBLE = re.compile(r"^(?:\s*|\s*#.*|%.*)$")


def read_manifests(text: str, *, source: str = "<manifests>") -> ManifestReading:
    """Every object of `text` that can be used; each bad document or item is an error, not the end.

    A real dump or a `helm template` output often has one odd document among hundreds: a CI check
    should judge the rest and name the odd one, with its line, instead of stopping at it.
    """
    reading = ManifestReading()
    document = 0
    pending = ""
    pending_line = 1
    for chunk, first_line in _chunks(text):
        if pending:
            chunk, first_line = pending + chunk, pending_line
            pending = ""
        if all(_PREAMBLE.match(line) for line in chunk.splitlines()) and chunk.lstrip().startswith("%"):
            pending, pending_line = chunk, first_line
            continue
        try:
            parsed = list(parse_documents(chunk, source=source, offset=(document, first_line - 1)))
        except ManifestError as exc:
            document += 1
            reading.errors.append(exc)
            continue
        document += len(parsed)
        try:
            found = list(entries(parsed, source=source))
        except ManifestError as exc:
            reading.errors.append(exc)
            continue
        for entry in found:
            try:
                reading.objects.append(_validated(entry, source))
            except ManifestError as exc:
                reading.errors.append(exc)
    return reading


def _chunks(text: str) -> Iterator[tuple[str, int]]:
    """The text cut before each `---` line, with the 1-based line each piece starts on."""
    starts = [0] + [m.start() for m in _DOCUMENT_START.finditer(text) if m.start() > 0]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        yield text[start:end], text.count("\n", 0, start) + 1


def load_manifests(text: str, *, source: str = "<manifests>") -> list[dict[str, Any]]:
    """Parse YAML (or JSON) text into a flat list of Kubernetes objects, Lists expanded."""
    return list(iter_manifests(text, source=source))


def iter_manifests(text: str, *, source: str = "<manifests>") -> Iterator[dict[str, Any]]:
    for entry in entries(parse_documents(text, source=source), source=source):
        yield _validated(entry, source)


def parse_documents(
    text: str, *, source: str = "<manifests>", offset: tuple[int, int] = (0, 0)
) -> Iterator[tuple[int, Any]]:
    """The YAML documents of `text`, numbered from 1; invalid YAML names the document it is in.

    `offset` = (documents, lines) before `text` in its file, so numbers and lines stay the file's.
    """
    document, line_offset = offset
    try:
        check_depth(text)
    except TooDeep as exc:
        raise ManifestError(source, None, str(exc)) from None
    loader = yaml.safe_load_all(text)
    while True:
        document += 1
        try:
            data = next(loader)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 + line_offset if mark is not None else 0
            at = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            hint = " (an unrendered Helm template? run `helm template` first)" if "{{" in text else ""
            raise ManifestError(source, document, f"invalid YAML{at}: {problem}{hint}") from None
        yield document, data


def entries(documents: Iterable[tuple[int, Any]], *, source: str = "<manifests>") -> Iterator[Entry]:
    """Every object of numbered documents, Lists (`List`, `PodList`, ...) expanded into their items."""
    for document, data in documents:
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
            # A typed List (`NodeList`, as `kubectl cluster-info dump` prints) may leave `kind`
            # and `apiVersion` out of its items: they are implied by the List.
            implied = kind[: -len("List")] if kind != "List" else None
            for index, item in enumerate(items, start=1):
                if implied and isinstance(item, dict) and not item.get("kind"):
                    item = {"kind": implied, "apiVersion": data.get("apiVersion", "v1"), **item}
                yield Entry(document, index, item)
        else:
            yield Entry(document, None, data)


def _validated(entry: Entry, source: str) -> dict[str, Any]:
    obj = entry.obj
    if not isinstance(obj, dict):
        raise entry.error(source, f"expected a mapping, got {type(obj).__name__}")
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        hint = (
            " (this looks like a Helm values file, not rendered manifests)"
            if entry.item is None and "metadata" not in obj and "apiVersion" not in obj
            else ""
        )
        raise entry.error(source, f"missing `kind`{hint}")
    if not isinstance(obj.get("apiVersion"), str):
        raise entry.error(source, f"{kind} is missing `apiVersion`")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise entry.error(source, f"{kind} is missing `metadata`")
    name = metadata.get("name")
    if (not isinstance(name, str) or not name) and isinstance(metadata.get("generateName"), str):
        # `generateName` only (a Job template, `kubectl create` input): the server would add a
        # suffix; the prefix names the object well enough for a report.
        name = metadata["generateName"]
        obj = {**obj, "metadata": {**metadata, "name": name}}
    if not isinstance(name, str) or not name:
        raise entry.error(source, f"{kind} is missing `metadata.name`")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise entry.error(source, f"{kind} {name}: `metadata.namespace` must be a string")
    for part in ("spec", "status"):
        value = obj.get(part)
        if value is not None and not isinstance(value, dict):
            raise entry.error(source, f"{kind} {name}: `{part}` must be a mapping")
    return obj
