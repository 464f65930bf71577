"""HTTPS transport: stdlib `http.server` threads over pyOpenSSL connections.

Why pyOpenSSL: like kube-apiserver, the server asks for a client certificate at the handshake but
accepts any (or none), then authenticates it per request, so a foreign or expired certificate gets
a 401 Status instead of a TLS alert. The stdlib `ssl` module cannot accept an unverified client
certificate, and uvicorn uses it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from lifeline_simulator.api import Request, Response

log = logging.getLogger("lifeline.simulator")
Handler = Callable[[Request], Response]


class _TLSStream(io.RawIOBase):
    """A file-like view of a pyOpenSSL connection for http.server's rfile/wfile."""

    def __init__(self, conn: SSL.Connection) -> None:
        self.conn = conn

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            try:
                data = self.conn.recv(len(buffer))
                break
            except SSL.WantReadError:
                # A non-application record (a TLS 1.3 ticket or key update): read on.
                select.select([self.conn], [], [], 30)
            except (SSL.ZeroReturnError, SSL.SysCallError):
                return 0
            except SSL.Error as exc:
                log.debug("simulator: TLS read failed: %s", exc)
                return 0
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        payload = bytes(data)
        self.conn.sendall(payload)
        return len(payload)


def server_context(cert_pem: str, key_pem: str, client_ca_pem: str) -> SSL.Context:
    """TLS 1.2+ with the serving certificate; requests (does not require or verify) a client cert."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)  # type: ignore[arg-type]
    ctx.check_privatekey()
    # Advertise the cluster CA, as kube-apiserver does with --client-ca-file.
    ctx.add_client_ca(x509.load_pem_x509_certificate(client_ca_pem.encode()))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    return ctx


def _handshake(conn: SSL.Connection, sock: socket.socket, timeout: float) -> None:
    """Complete the server handshake on a blocking socket, giving up after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    try:
        while True:
            wait: tuple[list[socket.socket], list[socket.socket]]
            try:
                conn.do_handshake()
                return
            except SSL.WantReadError:
                wait = ([sock], [])
            except SSL.WantWriteError:
                wait = ([], [sock])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not any(select.select(*wait, [], remaining)):
                raise TimeoutError("TLS handshake timed out")
    finally:
        sock.setblocking(True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TLSServer

    def setup(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(None)
        # Headers and body go out as separate TLS records: without this, Nagle's algorithm holds the
        # body back until the client's delayed ACK (~40 ms per request).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = SSL.Connection(self.server.tls_context, sock)
        conn.set_accept_state()
        self.tls = conn
        self.peer_der: bytes | None = None
        self.server.track(sock, add=True)
        try:
            _handshake(conn, sock, timeout=10)
        except (SSL.Error, OSError) as exc:
            log.debug("simulator: TLS handshake failed: %s", exc)
            self.handshake_ok = False
        else:
            self.handshake_ok = True
            peer = conn.get_peer_certificate(as_cryptography=True)
            if peer is not None:
                self.peer_der = peer.public_bytes(serialization.Encoding.DER)
        stream = _TLSStream(conn)
        self.rfile = io.BufferedReader(stream)  # type: ignore[assignment]
        self.wfile = stream  # type: ignore[assignment]

    def handle(self) -> None:
        if self.handshake_ok:
            super().handle()

    def finish(self) -> None:
        with contextlib.suppress(SSL.Error, OSError):
            self.tls.shutdown()
        self.server.track(self.request, add=False)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        chunks, missing = [], length
        while missing > 0:
            chunk = self.rfile.read(missing)
            if not chunk:
                break
            chunks.append(chunk)
            missing -= len(chunk)
        body = b"".join(chunks)
        lines = tuple(self.headers.items())
        request = Request(self.command, self.path, dict(lines), body, self.peer_der, lines)
        response = self.server.handler(request)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.stream is None:
            self.wfile.write(response.body)
        else:
            self._stream(response.stream)

    def _stream(self, chunks: Iterator[bytes]) -> None:
        """Write a watch as it happens, in chunked encoding; stop when the client or server goes."""
        try:
            for chunk in chunks:
                if self.server.stopping or self._client_gone():
                    self.close_connection = True
                    return
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (SSL.Error, OSError):
            self.close_connection = True  # the client went away: nothing more to say
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _client_gone(self) -> bool:
        """True once the client closed (EOF) or started talking again (a close_notify): either way,
        nobody reads the stream any more."""
        sock: socket.socket = self.request
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)
        except (OSError, ValueError):
            return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("simulator %s: " + format, self.client_address[0], *args)


class _TLSServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], tls_context: SSL.Context, handler: Handler) -> None:
        self.tls_context = tls_context
        self.handler = handler
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.stopping = False  # set by stop(): open watches end at their next heartbeat
        super().__init__(address, _RequestHandler)

    def track(self, sock: socket.socket, *, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class HttpsServer:
    """Serves `handler` over HTTPS on host:port (0 picks a free port) in a background thread."""

    def __init__(self, host: str, port: int, tls_context: SSL.Context, handler: Handler) -> None:
        self._server = _TLSServer((host, port), tls_context, handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="k8s-simulator",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Release a server that was never started."""
        self._server.server_close()

    def stop(self) -> None:
        self._server.stopping = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
