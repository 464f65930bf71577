"""Build a `ClusterSnapshot` from objects, streaming pods into a digest as they arrive."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.services.readiness.model import AwsFacts, ClusterSnapshot
from app.services.readiness.pods import PodDigestBuilder


class SnapshotBuilder:
    """Accumulates objects of any kind; pods go into running summaries and are not kept."""

    def __init__(self) -> None:
        self._objects: dict[str, list[Mapping[str, Any]]] = {}
        self._pods = PodDigestBuilder()
        self._saw_pods = False

    def collected(self, kind: str) -> None:
        """Record that `kind` was listed (so zero objects reads as "none", not "not collected")."""
        if kind == "Pod":
            self._saw_pods = True
        else:
            self._objects.setdefault(kind, [])

    def add(self, obj: Mapping[str, Any], kind: str | None = None) -> None:
        kind = kind or str(obj.get("kind", ""))
        if kind == "Pod":
            self._saw_pods = True
            self._pods.add(obj)
        else:
            self._objects.setdefault(kind, []).append(obj)

    def extend(self, objects: Iterable[Mapping[str, Any]], kind: str | None = None) -> None:
        for obj in objects:
            self.add(obj, kind)

    def build(self, cluster_name: str, *, live: bool, aws: AwsFacts | None = None) -> ClusterSnapshot:
        digest = self._pods.build()
        if not self._saw_pods:
            digest = type(digest)(collected=False)
        return ClusterSnapshot(
            cluster_name=cluster_name,
            objects={kind: tuple(items) for kind, items in self._objects.items()},
            pods=digest,
            live=live,
            aws=aws or AwsFacts(),
        )


def snapshot_from_objects(
    objects: Iterable[Mapping[str, Any]], cluster_name: str = "manifests", *, aws: AwsFacts | None = None
) -> ClusterSnapshot:
    """A snapshot of a manifest dump: no live cluster, AWS facts only when given."""
    builder = SnapshotBuilder()
    builder.extend(objects)
    return builder.build(cluster_name, live=False, aws=aws)
