"""Real receivers on loopback: an HTTP webhook receiver that can fail or hang on demand and drops
repeats by Idempotency-Key (as a well-behaved receiver does), and an aiosmtpd SMTP server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


@dataclass
class HttpReceiver:
    """`fail_with` answers that status (None: 200); `hang_after` blocks the Nth request until released."""

    port: int = field(default_factory=free_port)
    fail_with: int | None = None
    hang_after: int | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    processed: list[Arrival] = field(default_factory=list)
    # Requests answered 200, repeats included.
    accepted: int = 0
    hung: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                arrival = Arrival(self.path, dict(self.headers), json.loads(raw), raw)
                with receiver.lock:
                    receiver.arrivals.append(arrival)
                    count = len(receiver.arrivals)
                    if receiver.fail_with is None:
                        receiver.accepted += 1
                        seen = {a.headers.get("Idempotency-Key") for a in receiver.processed}
                        if arrival.headers.get("Idempotency-Key") not in seen:
                            receiver.processed.append(arrival)
                if receiver.hang_after is not None and count == receiver.hang_after:
                    receiver.hung.set()
                    receiver.release.wait(30)
                    return
                self.send_response(receiver.fail_with or 200)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.fail_with is None else b"down for maintenance")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """aiosmtpd on a fixed loopback port; `stop()` and `start()` take it down and bring it back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Collect()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages

    def start(self) -> SmtpReceiver:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
