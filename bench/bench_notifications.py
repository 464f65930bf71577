"""Outbox throughput and latency: a burst of 1,000 events across 3 webhook channels (3,000
deliveries) on a throw-away SQLite database, one sender, receivers on loopback.

Latency is from the commit of the event to the commit of its delivery. Baseline, same run: the
same 3,000 signed POSTs sent straight from a loop, with no database at all.
"""

from __future__ import annotations

import base64
import http.server
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app import migrate
from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations import notify
from app.integrations.vault import Vault, generate_data_key
from app.jobs.notifications import Sender
from app.models.base import utcnow
from app.models.notification import NotificationDelivery, NotificationEvent
from app.services.audit import SYSTEM
from app.services.notifications import events, rules
from app.settings import Settings

EVENTS = 1000
CHANNELS = 3


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _receiver() -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def _baseline(urls: list[str]) -> float:
    message = notify.Message(
        event_id=1,
        key="k",
        kind="credential.issued",
        phase="info",
        severity="info",
        title="t",
        body="b",
        occurred_at=utcnow(),
        idempotency_key="x",
    )
    started = time.perf_counter()
    for _ in range(EVENTS):
        for url in urls:
            notify.send_webhook(url, "bench-secret-0123456789", message)
    return time.perf_counter() - started


def main() -> None:
    servers = [_receiver() for _ in range(CHANNELS)]
    urls = [url for _, url in servers]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate.upgrade(url)
        key = generate_data_key()
        settings = Settings(_env_file=None, database_url=url, data_key=key)  # type: ignore[call-arg]
        engine = create_db_engine(url)
        factory = make_session_factory(engine)
        vault = Vault(base64.b64decode(key))
        with session_scope(factory) as session:
            for n, hook in enumerate(urls):
                channel = rules.create_channel(
                    session,
                    vault,
                    name=f"hook{n}",
                    kind="webhook",
                    config={"url": hook, "secret": "bench-secret-0123456789"},
                    actor=SYSTEM,
                    now=utcnow(),
                )
                rules.create_rule(session, name=f"all{n}", channel_id=channel.id, actor=SYSTEM, now=utcnow())

        baseline = _baseline(urls)

        started = time.perf_counter()
        for n in range(EVENTS):  # one transaction per event, as a state change would write it
            with session_scope(factory) as session:
                events.emit(
                    session,
                    key=f"outpost:{n % 50}",
                    kind="credential.issued",
                    phase="info",
                    title=f"#{n}",
                    body="bench",
                    now=utcnow(),
                )
        emitted = time.perf_counter() - started
        sender = Sender(settings, factory, batch=100)
        send_started = time.perf_counter()
        delivered, failed = sender.deliver_due()
        sending = time.perf_counter() - send_started
        total = time.perf_counter() - started
        with session_scope(factory) as session:
            rows = session.execute(
                select(NotificationEvent.created_at, NotificationDelivery.delivered_at).join(
                    NotificationDelivery, NotificationDelivery.event_id == NotificationEvent.id
                )
            ).all()
        engine.dispose()
    for server, _ in servers:
        server.shutdown()
    latencies = sorted((done - made).total_seconds() for made, done in rows if done is not None)
    assert delivered == EVENTS * CHANNELS and failed == 0, (delivered, failed)
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"burst: {EVENTS} events x {CHANNELS} webhook channels = {delivered} deliveries, {failed} failed")
    print(f"write {EVENTS} events (one transaction each): {emitted:.2f} s ({EVENTS / emitted:.0f} events/s)")
    print(f"sender: {sending:.2f} s, {delivered / sending:.0f} deliveries/s; burst end to end {total:.2f} s")
    print(f"latency commit -> delivered: p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s")
    print(
        f"baseline, same run: {EVENTS * CHANNELS} signed POSTs in a loop, no database: "
        f"{baseline:.2f} s ({EVENTS * CHANNELS / baseline:.0f}/s)"
    )


if __name__ == "__main__":
    main()
