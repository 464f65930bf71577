"""`python -m tests.support.crash_server POINT MARKER serve ...`: `lifeline serve ...` that stops dead at
POINT, so a test can `kill -9` it exactly there instead of racing timers (issue 11).

POINT is an issuing step (`csr_created`, `approved`, `certificate_issued`, `binding_created`,
`verified`): right after the cluster call that completes it, the request thread writes MARKER and
blocks for ever. Or `poll`: the connectivity poll blocks right after CloudWatch answered, with its
`poll_runs` row `running` and nothing stored yet. The process is otherwise the real server.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

# issuing step -> (side, ClusterApi method after which the step is complete on the cluster)
STEPS = {
    "csr_created": ("issuer", "create_csr"),
    "approved": ("issuer", "approve_csr"),
    "certificate_issued": ("issuer", "read_csr"),
    "binding_created": ("issuer", "create_binding"),
    "verified": ("client", "whoami"),
}


def _stop_dead(marker: Path) -> None:
    marker.write_text("reached\n")
    threading.Event().wait()


class _StopAfter:
    def __init__(self, inner: Any, method: str, marker: Path) -> None:
        self._inner, self._method, self._marker = inner, method, marker

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            attr(*args, **kwargs)
            _stop_dead(self._marker)

        return call


def _install(point: str, marker: Path) -> None:
    if point == "poll":
        from app.jobs import connectivity

        real_fetch = connectivity.fetch_connected_status

        def fetch(*args: Any, **kwargs: Any) -> Any:
            real_fetch(*args, **kwargs)
            _stop_dead(marker)

        connectivity.fetch_connected_status = fetch  # type: ignore[assignment]
        return
    from app.integrations.kube.operations import ClusterAccess
    from app.services.credentials import runs

    side, method = STEPS[point]
    real_build = runs.build_access

    def build_access(settings: Any, session_factory: Any = None) -> ClusterAccess:
        real = real_build(settings, session_factory)

        def issuer(target: Any) -> Any:
            api = real.issuer(target)
            return _StopAfter(api, method, marker) if side == "issuer" else api

        def as_client(target: Any, cert: str, key: bytes) -> Any:
            api = real.as_client(target, cert, key)
            return _StopAfter(api, method, marker) if side == "client" else api

        return ClusterAccess(issuer, as_client, real.provisioner)

    runs.build_access = build_access  # type: ignore[assignment]


if __name__ == "__main__":
    _install(sys.argv[1], Path(sys.argv[2]))
    sys.argv = ["lifeline", *sys.argv[3:]]
    from app.cli import main

    main()
