"""Several senders and a killed one, against a real database (file or PostgreSQL), never the
per-test savepoint: two senders deliver each event exactly once; a sender killed with SIGKILL in
the middle of a delivery, then restarted, loses nothing and the receiver drops the one repeat by its
Idempotency-Key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations.vault import Vault
from app.jobs.notifications import Sender
from app.models import NotificationAttempt, NotificationDelivery
from app.models.base import utcnow
from app.services.notifications import events, rules
from tests.conftest import DatabaseServer, make_settings
from tests.fixtures.notifications import ADMIN
from tests.support.receivers import HttpReceiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_database(database_server: DatabaseServer) -> Iterator[tuple[str, Engine]]:
    url = database_server.create_migrated("notify")
    engine = create_db_engine(url)
    yield url, engine
    engine.dispose()


def _seed(factory: sessionmaker[Session], vault: Vault, url: str, count: int, keys: int) -> None:
    with session_scope(factory) as session:
        channel = rules.create_channel(
            session, vault, name="hook", kind="webhook", config={"url": url}, actor=ADMIN, now=utcnow()
        )
        rules.create_rule(session, name="all", channel_id=channel.id, actor=ADMIN, now=utcnow())
    for n in range(count):
        with session_scope(factory) as session:
            events.emit(
                session,
                key=f"k{n % keys}",
                kind="credential.issued",
                phase="info",
                title=f"#{n}",
                body="",
                attrs={"n": n},
                now=utcnow(),
            )


def _ns_per_key(receiver: HttpReceiver) -> dict[str, list[int]]:
    per: dict[str, list[int]] = {}
    for arrival in receiver.processed:
        per.setdefault(arrival.body["key"], []).append(arrival.body["attrs"]["n"])
    return per


def test_two_senders_deliver_each_event_exactly_once(
    own_database: tuple[str, Engine], vault: Vault, data_key: str, http_receiver: HttpReceiver
) -> None:
    url, engine = own_database
    factory = make_session_factory(engine)
    _seed(factory, vault, http_receiver.url, 60, keys=6)
    settings = make_settings(url, data_key=data_key)
    senders = [Sender(settings, factory, owner=f"s{i}", batch=5) for i in range(2)]
    threads = [threading.Thread(target=s.deliver_due) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for s in senders:  # whatever one skipped because an earlier one of its key was in flight
        s.deliver_due()
    assert len(http_receiver.arrivals) == 60  # not one repeat on the wire
    assert all(ns == sorted(ns) for ns in _ns_per_key(http_receiver).values())
    with Session(engine) as session:
        owners = session.scalars(select(NotificationAttempt.sender).distinct()).all()
        assert session.scalar(select(func.count()).where(NotificationDelivery.status == "delivered")) == 60
    assert set(owners) == {"s0", "s1"}  # both worked, neither took the other's rows


def test_sigkill_mid_delivery_then_restart_loses_and_duplicates_nothing(
    own_database: tuple[str, Engine],
    vault: Vault,
    data_key: str,
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    url, engine = own_database
    factory = make_session_factory(engine)
    _seed(factory, vault, http_receiver.url, 30, keys=3)
    http_receiver.hang_after = 12  # the 12th request is received but never answered
    env = {
        **os.environ,
        "LIFELINE_DATABASE_URL": url,
        "LIFELINE_DATA_KEY": data_key,
        "LIFELINE_NOTIFY_LEASE_SECONDS": "5",
        "LIFELINE_NOTIFY_RETRY_BASE_SECONDS": "1",
    }
    command = [sys.executable, "-m", "app.cli", "notifications", "send", "--loop", "--interval", "0.2"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert http_receiver.hung.wait(60), "the sender never reached the 12th delivery"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    http_receiver.hang_after = None
    http_receiver.release.set()
    with Session(engine) as session:
        delivered = session.scalar(select(func.count()).where(NotificationDelivery.status == "delivered"))
    assert delivered == 11

    second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                done = session.scalar(select(func.count()).where(NotificationDelivery.status == "delivered"))
            if done == 30:
                break
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert done == 30
    # Every event processed once, in order per key; the interrupted one came again with the same
    # Idempotency-Key (31 requests on the wire, 30 distinct keys), so the receiver dropped the repeat.
    assert sorted(a.body["attrs"]["n"] for a in http_receiver.processed) == list(range(30))
    assert all(ns == sorted(ns) for ns in _ns_per_key(http_receiver).values())
    keys = [a.headers["Idempotency-Key"] for a in http_receiver.arrivals]
    assert len(keys) == 31 and len(set(keys)) == 30
    with Session(engine) as session:
        interrupted = session.scalars(
            select(NotificationAttempt).where(NotificationAttempt.error.startswith("interrupted"))
        ).all()
        assert len(interrupted) == 1
