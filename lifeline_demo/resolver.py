"""Name resolution for the demo's endpoint hostnames, inside the demo's own process.

A real EKS local cluster's endpoint is a hostname that Route 53 (or the Outpost's local DNS) resolves
to the control-plane ENI IPs. The demo's hostnames are in no DNS, and writing `/etc/hosts` would
change the visitor's machine, so the demo answers for exactly its own names here: the dashboard, its
pollers and the readiness check `endpoint-dns` see what they would see on an Outpost with local DNS
(the name resolves to the control-plane IPs). Every other name goes to the system resolver untouched.

Other programs (kubectl in a shell) do not see these answers: they use the bundle's direct contexts
(a control-plane IP with `tls-server-name`) or its `hosts` lines, which is the point of the bundle.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from typing import Any

_lock = threading.Lock()
_names: dict[str, tuple[str, ...]] = {}
_system_getaddrinfo = socket.getaddrinfo


def _normal(host: Any) -> str | None:
    if isinstance(host, bytes):
        host = host.decode("ascii", "ignore")
    return host.rstrip(".").lower() if isinstance(host, str) else None


def _getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:  # noqa: A002
    name = _normal(host)
    ips = _names.get(name) if name else None
    if not ips or family not in (0, socket.AF_INET):
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    answers = []
    for ip in ips:
        # The system resolver does the port and socket-type expansion for a numeric address.
        answers.extend(
            _system_getaddrinfo(ip, port, socket.AF_INET, type, proto, flags | socket.AI_NUMERICHOST)
        )
    return answers


class DemoResolver:
    """Registers a fleet's hostnames with the process-wide hook; the hook is removed with the last."""

    def __init__(self) -> None:
        self.names: dict[str, tuple[str, ...]] = {}

    def install(self, hosts: Mapping[str, tuple[str, ...]]) -> None:
        with _lock:
            self.names = {host.lower(): tuple(ips) for host, ips in hosts.items()}
            _names.update(self.names)
            socket.getaddrinfo = _getaddrinfo

    def uninstall(self) -> None:
        with _lock:
            for host in self.names:
                _names.pop(host, None)
            self.names = {}
            if not _names:
                socket.getaddrinfo = _system_getaddrinfo


def resolves(host: str) -> tuple[str, ...]:
    """What the demo answers for `host` (empty when it is not a demo name)."""
    return _names.get(_normal(host) or "", ())
