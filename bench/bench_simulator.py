"""Simulator throughput: what a readiness poll of a 1,000-pod cluster costs through the adapter.

Baseline in the same run: `/version` round trips (TLS on a kept-alive connection, no store work).
Targets (idle machine): a page of 500 pods within 100 ms (the readiness poll of a large cluster
stays well under a second), a new x509 connection (handshake + whoami) within 50 ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from app.integrations.kube.client import KubeAuth, connect
from lifeline_simulator import SimulatedCluster


def _pods(count: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{i:04d}", "namespace": f"team-{i % 20}", "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/web:1"}]
            },
            "status": {"phase": "Running"},
        }
        for i in range(count)
    ]


def _timed(action: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    started = time.perf_counter()
    sim = SimulatedCluster(name="bench", manifests=_pods(1000)).start()
    print(f"start-up with 1,000 pods: {(time.perf_counter() - started) * 1000:.0f} ms")
    cert, key = sim.issue_client_certificate("kubernetes-admin", ["system:masters"])
    try:
        with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key)) as conn:
            version = _timed(conn.version, 50)
            page = _timed(lambda: conn.list_objects("v1", "pods", limit=500), 10)
            everything = _timed(lambda: list(conn.iter_objects("v1", "pods", page_size=500)), 5)
            selected = _timed(
                lambda: conn.list_objects("v1", "pods", label_selector="app=web", limit=500), 10
            )

        def fresh_connection() -> None:
            with connect(sim.url, sim.ca_pem, KubeAuth.x509(cert, key)) as conn:
                conn.whoami()

        handshake = _timed(fresh_connection, 10)
    finally:
        sim.stop()
    print(f"baseline /version:                  {version * 1000:7.1f} ms")
    print(f"list 500 pods (one page):           {page * 1000:7.1f} ms  ({page / version:.1f}x baseline)")
    print(f"list 500 pods with a label selector:{selected * 1000:7.1f} ms")
    print(f"all 1,000 pods (two pages):         {everything * 1000:7.1f} ms")
    print(f"new x509 connection + whoami:       {handshake * 1000:7.1f} ms")
    verdict = "within" if page <= 0.1 and handshake <= 0.05 else "OUTSIDE"
    print(f"targets (page <= 100 ms, new connection <= 50 ms): {verdict}")
