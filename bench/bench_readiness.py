"""Readiness on a 5,000-pod cluster: digesting pods page by page against holding them all, and the
time to evaluate the whole catalogue. The baseline (keep every pod) is measured in the same run."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from app.services.readiness.catalogue import evaluate
from app.services.readiness.model import CheckContext
from app.services.readiness.snapshot import SnapshotBuilder

PODS = 5000
PAGE = 500


def _pod(index: int) -> dict[str, Any]:
    app = f"app-{index % 50}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-7d9f8-{index:05d}",
            "namespace": f"team-{index % 10}",
            "labels": {"app": app, "pod-template-hash": "7d9f8"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{app}-7d9f8", "controller": True}],
        },
        "spec": {
            "nodeName": f"node-{index % 40}",
            "containers": [
                {
                    "name": "main",
                    "image": f"123456789012.dkr.ecr.us-west-2.amazonaws.com/{app}:1.{index % 3}",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": f"VAR_{i}", "value": "x" * 40} for i in range(10)],
                }
            ],
        },
        "status": {"phase": "Running", "podIP": f"10.1.{index // 250}.{index % 250}"},
    }


def _pages() -> Iterator[list[dict[str, Any]]]:
    for start in range(0, PODS, PAGE):
        yield [_pod(i) for i in range(start, min(PODS, start + PAGE))]


def _measure(keep_all: bool, *, trace: bool) -> tuple[float, int]:
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    builder = SnapshotBuilder()
    kept: list[dict[str, Any]] = []
    for page in _pages():
        if keep_all:
            kept.extend(page)
        builder.extend(page)
    snapshot = builder.build("bench", live=True)
    evaluate(snapshot, CheckContext(), attestations=None)
    elapsed = time.perf_counter() - started
    if not trace:
        return elapsed, 0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    # Time without tracemalloc (it slows allocation several-fold); memory with it.
    base_time, _ = _measure(keep_all=True, trace=False)
    time_taken, _ = _measure(keep_all=False, trace=False)
    _, base_peak = _measure(keep_all=True, trace=True)
    _, peak = _measure(keep_all=False, trace=True)
    print(f"pods: {PODS} in pages of {PAGE}")
    print(f"baseline (every pod kept): {base_time * 1000:.0f} ms, peak {base_peak / 2**20:.1f} MiB")
    print(
        f"streamed into the digest:  {time_taken * 1000:.0f} ms, peak {peak / 2**20:.1f} MiB "
        f"({100 * peak / base_peak:.0f}% of baseline)"
    )


if __name__ == "__main__":
    main()
