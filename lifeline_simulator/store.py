"""The simulated etcd: objects by resource type, one resourceVersion counter, selectors and paging."""

from __future__ import annotations

import base64
import collections
import copy
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lifeline_simulator.defaults import GENERATION_GROUPS
from lifeline_simulator.errors import ApiError, already_exists, invalid, not_found
from lifeline_simulator.resources import ResourceType
from lifeline_simulator.selectors import parse_field_selector, parse_label_selector

Clock = Callable[[], dt.datetime]
Key = tuple[str, str]  # (namespace or "", name)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Kinds whose names are path segments (may contain ':'), as in the API server's validation.
PATH_SEGMENT_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def validate_name(rtype: ResourceType, name: str) -> str | None:
    """None when `name` is valid for the kind, else the API server's reason."""
    if rtype.kind in PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return "may not contain '/' or '%' and may not be '.' or '..'"
        return None
    if rtype.kind == "Namespace":
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True)
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str
    remaining: int | None


class Store:
    """Thread-safe object storage; every write bumps one cluster-wide resourceVersion."""

    def __init__(self, clock: Clock, *, feed_size: int = 20000) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self._revision = 0
        # The change feed: (revision, bucket, event type, object) for watches; listeners for controllers.
        self._feed: collections.deque[tuple[int, str, str, dict[str, Any]]] = collections.deque(
            maxlen=feed_size
        )
        self._changed = threading.Condition(self._lock)
        self.listeners: list[Callable[[ResourceType, str, dict[str, Any], bool], None]] = []

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def revision(self) -> int:
        return self._revision

    def _bucket(self, rtype: ResourceType) -> dict[Key, dict[str, Any]]:
        return self._objects.setdefault(f"{rtype.group}/{rtype.plural}", {})

    def _emit(self, rtype: ResourceType, kind: str, obj: dict[str, Any], *, loaded: bool = False) -> None:
        snapshot = copy.deepcopy(obj)
        self._feed.append((self._revision, f"{rtype.group}/{rtype.plural}", kind, snapshot))
        self._changed.notify_all()
        for listener in self.listeners:
            listener(rtype, kind, snapshot, loaded)

    def changes(
        self, rtype: ResourceType, namespace: str | None, after: int, deadline: float
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Changes of one kind after revision `after`, waiting until `deadline` (monotonic) for one."""
        bucket = f"{rtype.group}/{rtype.plural}"
        with self._changed:
            while True:
                found = [
                    (rev, kind, copy.deepcopy(obj))
                    for rev, key, kind, obj in self._feed
                    if rev > after
                    and key == bucket
                    and (not namespace or (obj.get("metadata") or {}).get("namespace") == namespace)
                ]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(min(remaining, 0.5))

    def oldest_change(self) -> int | None:
        """The revision of the oldest change the feed still holds (None: nothing changed yet)."""
        with self._lock:
            return self._feed[0][0] if self._feed else None

    def _bump(self) -> str:
        self._revision += 1
        return str(self._revision)

    def namespace_exists(self, namespace: str) -> bool:
        with self._lock:
            return ("", namespace) in self._objects.get("/namespaces", {})

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._bucket(rtype).get((namespace if rtype.namespaced else "", name))
            if obj is None:
                raise not_found(rtype.plural, name, rtype.group)
            return copy.deepcopy(obj)

    def find(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(rtype, namespace, name)
        except ApiError:
            return None

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        """Objects sorted by (namespace, name), filtered, then paged with an opaque continue token."""
        labels = parse_label_selector(label_selector) if label_selector else None
        fields = parse_field_selector(field_selector, rtype.plural) if field_selector else None
        start_after: Key | None = None
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_after = (str(state["ns"]), str(state["name"]))
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    400, "continue key is not valid: incorrect encoded start resourceVersion"
                ) from None
        with self._lock:
            keys = sorted(self._bucket(rtype))
            revision = str(self._revision)
            matched = []
            for key in keys:
                if namespace and key[0] != namespace:
                    continue
                if start_after is not None and key <= start_after:
                    continue
                obj = self._bucket(rtype)[key]
                if labels and not labels(obj):
                    continue
                if fields and not fields(obj):
                    continue
                matched.append(obj)
            page = matched[:limit] if limit > 0 else matched
            token, remaining = "", None
            if limit > 0 and len(matched) > limit:
                last = page[-1]["metadata"]
                state = {"ns": last.get("namespace", ""), "name": last["name"], "rv": revision}
                token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
                remaining = len(matched) - limit
            return ListResult([copy.deepcopy(o) for o in page], revision, token, remaining)

    def create(self, rtype: ResourceType, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object: checks name and namespace, assigns uid, timestamps and resourceVersion."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not name:
            raise invalid(
                rtype.kind, "", [("metadata.name", "Required value: name or generateName is required")]
            )
        reason = validate_name(rtype, name)
        if reason:
            raise invalid(
                rtype.kind, name, [("metadata.name", f'Invalid value: "{name}": {reason}')], rtype.group
            )
        meta["name"] = name
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        with self._lock:
            if rtype.namespaced and not self.namespace_exists(namespace):
                raise not_found("namespaces", namespace)
            bucket = self._bucket(rtype)
            key = (namespace if rtype.namespaced else "", name)
            if key in bucket:
                raise already_exists(rtype.plural, name, rtype.group)
            # Server-set fields: whatever the client sent (`creationTimestamp: null` from
            # `kubectl create --dry-run=client -o yaml`) is replaced, as kube-apiserver does.
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = timestamp(self._clock())
            for server_set in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(server_set, None)
            meta["resourceVersion"] = self._bump()
            meta.pop("deletionTimestamp", None)
            obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
            meta.pop("generation", None)
            if rtype.group in GENERATION_GROUPS or rtype.custom:
                meta["generation"] = 1
            bucket[key] = obj
            self._emit(rtype, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        """PUT semantics: resourceVersion precondition, immutable identity, status only via /status."""
        meta = obj.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError(
                400, f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        with self._lock:
            bucket = self._bucket(rtype)
            key = (namespace if rtype.namespaced else "", name)
            current = bucket.get(key)
            if current is None:
                raise not_found(rtype.plural, name, rtype.group)
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
                raise ApiError(
                    409,
                    f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    details={"name": name, "group": rtype.group, "kind": rtype.plural},
                )
            if subresource in ("status", "approval"):
                updated = copy.deepcopy(current)
                updated["status"] = copy.deepcopy(obj.get("status") or {})
            else:
                updated = copy.deepcopy(obj)
                updated.setdefault("metadata", {})
                if "status" in rtype.subresources and "status" in current:
                    updated["status"] = copy.deepcopy(current["status"])
            new_meta = updated["metadata"]
            if subresource not in ("status", "approval"):
                # generation is the server's: a client-sent one is ignored, a spec change bumps it.
                new_meta.pop("generation", None)
                if rtype.group in GENERATION_GROUPS or rtype.custom:
                    changed = updated.get("spec") != current.get("spec")
                    new_meta["generation"] = int(current["metadata"].get("generation") or 1) + changed
            new_meta.pop("deletionTimestamp", None)
            for fixed in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
                if fixed in current["metadata"]:
                    new_meta[fixed] = current["metadata"][fixed]
            if not rtype.namespaced:
                new_meta.pop("namespace", None)
            updated["apiVersion"], updated["kind"] = rtype.api_version, rtype.kind
            new_meta["resourceVersion"] = self._bump()
            bucket[key] = updated
            self._emit(rtype, "MODIFIED", updated)
            return copy.deepcopy(updated)

    def mark_deleting(
        self, rtype: ResourceType, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Set deletionTimestamp (and the status given): the object waits for its finalizers."""
        with self._lock:
            key = (namespace if rtype.namespaced else "", name)
            current = self._bucket(rtype).get(key)
            if current is None:
                raise not_found(rtype.plural, name, rtype.group)
            if not current["metadata"].get("deletionTimestamp"):
                current["metadata"]["deletionTimestamp"] = timestamp(self._clock())
                current["metadata"]["deletionGracePeriodSeconds"] = 0
                current["status"] = {**(current.get("status") or {}), **status}
                current["metadata"]["resourceVersion"] = self._bump()
                self._emit(rtype, "MODIFIED", current)
            return copy.deepcopy(current)

    def delete(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """Remove an object (namespaces take their contents with them) and return it as it was."""
        with self._lock:
            bucket = self._bucket(rtype)
            key = (namespace if rtype.namespaced else "", name)
            obj = bucket.pop(key, None)
            if obj is None:
                raise not_found(rtype.plural, name, rtype.group)
            obj["metadata"]["resourceVersion"] = self._bump()
            self._emit(rtype, "DELETED", obj)
            if rtype.kind == "Namespace":
                for other in self._objects.values():
                    for other_key in [k for k in other if k[0] == name]:
                        del other[other_key]
            return copy.deepcopy(obj)

    def load(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """Put a manifest object in place as it is (status included), creating its namespace if needed."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if rtype.namespaced else ""
        with self._lock:
            if rtype.namespaced and not self.namespace_exists(namespace):
                self.ensure_namespace(namespace)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", timestamp(self._clock()))
            meta["resourceVersion"] = self._bump()
            self._bucket(rtype)[(namespace, meta["name"])] = obj
            self._emit(rtype, "ADDED", obj, loaded=True)

    def ensure_namespace(self, name: str) -> None:
        with self._lock:
            bucket = self._objects.setdefault("/namespaces", {})
            if ("", name) not in bucket:
                bucket[("", name)] = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "uid": str(uuid.uuid4()),
                        "creationTimestamp": timestamp(self._clock()),
                        "resourceVersion": self._bump(),
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
