"""Watches that stay open: `?watch=1` streams the store's change feed as newline-delimited JSON
events until `timeoutSeconds` (or the client goes away), as a kube-apiserver does.

- No `resourceVersion` (or "0"): the current objects first, as ADDED events, then every change.
- `resourceVersion=N`: only changes after N; a version older than the retained feed answers
  410 Expired ("too old resource version"), so clients re-list, as they do with a real server.
- Label and field selectors apply to every event; a watch asked for as a Table (what `kubectl get
  -w` sends) carries each object as a one-row Table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from lifeline_simulator.errors import ApiError
from lifeline_simulator.resources import ResourceType
from lifeline_simulator.selectors import parse_field_selector, parse_label_selector
from lifeline_simulator.store import Store

# A real server picks 30 to 60 minutes when the client does not say; one hour at most here.
DEFAULT_TIMEOUT_SECONDS = 1800
MAX_TIMEOUT_SECONDS = 3600
# How often a quiet stream wakes up to notice a closed connection or a stopping server.
HEARTBEAT_SECONDS = 1.0

Render = Callable[[dict[str, Any]], dict[str, Any]]


def timeout_seconds(query: dict[str, str]) -> float:
    text = query.get("timeoutSeconds") or ""
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"timeoutSeconds: invalid value {text!r}: must be an integer") from None
    if value < 0:
        raise ApiError(400, f"timeoutSeconds: invalid value {value}: must be greater than or equal to 0")
    return min(value, MAX_TIMEOUT_SECONDS) or DEFAULT_TIMEOUT_SECONDS


def open_watch(
    store: Store,
    rtype: ResourceType,
    namespace: str | None,
    query: dict[str, str],
    render: Render,
) -> Iterator[bytes]:
    """Check the request now (errors answer before the stream starts), then return the stream."""
    labels = parse_label_selector(query["labelSelector"]) if query.get("labelSelector") else None
    fields = (
        parse_field_selector(query["fieldSelector"], rtype.plural) if query.get("fieldSelector") else None
    )
    deadline = time.monotonic() + timeout_seconds(query)
    version = query.get("resourceVersion") or ""
    with store.lock:
        if version in ("", "0"):
            initial = store.list(
                rtype,
                namespace,
                label_selector=query.get("labelSelector", ""),
                field_selector=query.get("fieldSelector", ""),
            ).items
            after = store.revision
        else:
            try:
                after = int(version)
            except ValueError:
                raise ApiError(400, f"resourceVersion: invalid value {version!r}") from None
            oldest = store.oldest_change()
            if oldest is not None and after < oldest - 1:
                raise ApiError(410, f"too old resource version: {after} ({store.revision})", "Expired")
            initial = []

    def wanted(obj: dict[str, Any]) -> bool:
        return (labels is None or labels(obj)) and (fields is None or fields(obj))

    def events() -> Iterator[bytes]:
        nonlocal after
        for obj in initial:
            yield _line("ADDED", render(obj))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            changes = store.changes(
                rtype, namespace, after, time.monotonic() + min(remaining, HEARTBEAT_SECONDS)
            )
            if not changes:
                yield b""  # a heartbeat: nothing to send, but the writer may check on its client
                continue
            for revision, kind, obj in changes:
                after = revision
                if wanted(obj):
                    yield _line(kind, render(obj))

    return events()


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"
