"""The sign-in check on the event loop (the sign-in readers, `app.db_reader`) decides as the
request's own session did: every request reads its row, so a session ended or a token revoked
elsewhere (another process, an admin) is refused at once, and an idle session is sent to sign in
again. Runs on both databases, each with its reader; what only one of them has (a server that ends
a session, pings, SQLite's lock) says so when skipped on the other."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, func, literal, select, text, update
from sqlalchemy.exc import OperationalError

from app import db as app_db
from app.db import create_db_engine, is_unreachable, make_session_factory, session_scope
from app.db_reader import (
    PostgresSignInReader,
    ReaderBusy,
    SignInReader,
    SqliteSignInReader,
    create_sign_in_reader,
)
from app.main import create_app
from app.models import ApiToken, User, WebSession
from app.models.base import utcnow
from app.services.accounts.sessions import SessionPolicy, session_lookup, start_session
from app.services.accounts.tokens import create_token
from app.services.audit import Actor, ClientInfo
from tests.conftest import DatabaseServer, create_account, free_port, make_settings, sign_in
from tests.support.counting import count_calls

T = TypeVar("T")


@pytest.fixture(scope="module")
def reader_database(database_server: DatabaseServer) -> str:
    """A database of this module's own (the shared test session's outer transaction would hide its
    rows from the reader's connections, as from any other connection)."""
    url = database_server.create_migrated("reader")
    app = create_app(make_settings(url))
    with session_scope(app.state.session_factory) as db:
        create_account(db, "viewer", "viewer")
    app.state.engine.dispose()
    return url


@dataclass
class Served:
    app: FastAPI
    client: TestClient

    def reader_reads(self, monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """The reads the sign-in reader makes from now on."""
        reader: SignInReader = self.app.state.sign_in_reader
        return count_calls(monkeypatch, reader, "read_one")


@pytest.fixture
def served(reader_database: str) -> Iterator[Served]:
    app = create_app(make_settings(reader_database))
    with session_scope(app.state.session_factory) as db:  # each test starts with no sign-in
        db.execute(delete(WebSession))
        db.execute(delete(ApiToken))
    with TestClient(app, base_url="http://testserver") as client:
        yield Served(app, client)
    app.state.engine.dispose()


def _on_postgresql(served: Served) -> bool:
    return bool(served.app.state.engine.dialect.name == "postgresql")


def test_the_reader_answers_a_signed_in_request(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in(served.client, "viewer")
    reads = served.reader_reads(monkeypatch)
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert len(reads) == 1


def test_a_session_ended_elsewhere_is_refused_at_its_next_request(served: Served) -> None:
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    # Another process (sign-out elsewhere, an admin ending the user's sessions) deletes the row.
    with session_scope(served.app.state.session_factory) as db:
        db.execute(delete(WebSession))
    page = served.client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=/")


def test_an_idle_session_is_sent_to_sign_in(served: Served) -> None:
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    later = utcnow() + dt.timedelta(minutes=served.app.state.settings.session_idle_minutes + 1)
    served.app.state.clock = lambda: later
    page = served.client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert "expired=1" in page.headers["location"]


def test_a_disabled_account_is_refused_at_its_next_request(served: Served) -> None:
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    with session_scope(served.app.state.session_factory) as db:
        db.execute(update(User).where(User.username == "viewer").values(disabled=True))
    try:
        assert served.client.get("/", follow_redirects=False).status_code == 303
    finally:
        with session_scope(served.app.state.session_factory) as db:
            db.execute(update(User).where(User.username == "viewer").values(disabled=False))


def test_a_token_revoked_elsewhere_is_refused_at_its_next_call(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(served.app.state.session_factory) as db:
        user = db.scalars(select(User).where(User.username == "viewer")).one()
        raw, _ = create_token(db, user, name="reader", expires_in_days=None, actor=Actor(name="test"))
    headers = {"Authorization": f"Bearer {raw}"}
    reads = served.reader_reads(monkeypatch)
    me = served.client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "viewer"
    assert len(reads) == 1
    with session_scope(served.app.state.session_factory) as db:
        db.execute(update(ApiToken).values(revoked_at=utcnow()))
    refused = served.client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert "not valid" in refused.json()["detail"]


def test_a_reader_connection_the_server_ended_is_replaced(
    served: Served, database_server: DatabaseServer
) -> None:
    """A restart or `pg_terminate_backend` ends the reader's pooled sessions too; the next request
    is answered, not refused with a 503 or a 500 (the socket says the session ended, so it is
    pinged and replaced)."""
    if not _on_postgresql(served):
        pytest.skip("a server that ends a session is PostgreSQL's case")
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert database_server.base_url
    admin = create_engine(database_server.base_url, isolation_level="AUTOCOMMIT")
    database = served.app.state.engine.url.database
    try:
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).all()
            assert ended, "the reader and the engine had connections to end"
            alive = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            )
            deadline = time.monotonic() + 10
            while conn.execute(alive, {"db": database}).scalar_one():
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        admin.dispose()
    assert served.client.get("/", follow_redirects=False).status_code == 200


def test_a_reader_is_made_for_an_engine_on_a_database_another_connection_shares(
    database_server: DatabaseServer, tmp_path: Path
) -> None:
    """PostgreSQL and a SQLite file; not for a single connection (a test's shared transaction,
    whose rows another connection cannot see) nor for an in-memory SQLite database."""
    engine = create_db_engine(database_server.create("readerkind"))
    memory = create_db_engine("sqlite://")
    try:
        reader = create_sign_in_reader(engine)
        kind = PostgresSignInReader if engine.dialect.name == "postgresql" else SqliteSignInReader
        assert isinstance(reader, kind) and reader.engine is engine
        if isinstance(reader, PostgresSignInReader):
            assert reader.idle_connections() == [], "it connects at its first lookup"
        with engine.connect() as connection:
            assert create_sign_in_reader(connection) is None
        assert create_sign_in_reader(memory) is None
    finally:
        engine.dispose()
        memory.dispose()


def test_a_reader_connection_back_in_use_at_once_is_not_pinged(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the main engine's: a ping is a second round trip, only after a second idle or when the
    socket says the server ended the session (the adapter's socket is psycopg's own)."""
    if not _on_postgresql(served):
        pytest.skip("pings are PostgreSQL's: SQLite opens a file")
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    reader: PostgresSignInReader = served.app.state.sign_in_reader
    pings = count_calls(monkeypatch, reader, "ping")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert pings == []
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert len(pings) == 1


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` in a loop of its own, on a thread of its own (the browser tests' Playwright
    keeps a loop running on the main thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def _engine(url: str, dialect: str | None = None) -> Engine:
    engine = create_db_engine(url)
    if dialect is not None and engine.dialect.name != dialect:
        engine.dispose()
        pytest.skip(f"this is {dialect}'s case")
    return engine


def test_the_reader_reads_the_row_the_request_session_reads(
    database_server: DatabaseServer, reader_database: str
) -> None:
    """The same statement through the columns' own result processors: UTC datetimes (SQLite's are
    text), booleans and labels as the ORM session gives them, so `signed_in_from` judges both
    alike."""
    engine = _engine(reader_database)
    try:
        with session_scope(make_session_factory(engine)) as db:
            user = db.scalars(select(User).where(User.username == "viewer")).one()
            raw, _ = start_session(db, user, client=ClientInfo(address="127.0.0.1"), policy=SessionPolicy())
        lookup = session_lookup(raw)
        assert lookup is not None
        with engine.connect() as connection:
            expected = connection.execute(*lookup).one()

        async def read() -> Any:
            reader = create_sign_in_reader(engine)
            assert reader is not None
            try:
                return await reader.read_one(*lookup)
            finally:
                await reader.close()

        row = _run(read())
        assert tuple(row) == tuple(expected)
        assert row._fields == tuple(expected._fields)
        assert row.expires_at.tzinfo == dt.UTC and row.is_sso is False
    finally:
        engine.dispose()


def test_a_database_away_is_an_operational_error_at_once_without_its_parameters(
    database_server: DatabaseServer, reader_database: str
) -> None:
    """Refused at once (no queue behind reconnects), as SQLAlchemy's OperationalError, which the
    error handlers answer with a 503; the token's hash is not in the message."""
    engine = _engine(reader_database, "postgresql")
    away = create_db_engine(engine.url.set(port=free_port()).render_as_string(hide_password=False))
    engine.dispose()
    lookup = session_lookup("s" * 43)
    assert lookup is not None

    async def read() -> BaseException:
        reader = create_sign_in_reader(away)
        assert reader is not None
        try:
            await reader.read_one(*lookup)
        except BaseException as exc:
            return exc
        raise AssertionError("the read did not fail")

    began = time.monotonic()
    error = _run(read())
    away.dispose()
    assert time.monotonic() - began < 5
    assert isinstance(error, OperationalError) and is_unreachable(error)
    assert lookup[1]["token_hash"] not in str(error)


def test_a_read_cancelled_half_way_does_not_hand_its_connection_on(
    database_server: DatabaseServer, reader_database: str
) -> None:
    """A client that goes away cancels its request mid-read: that connection is closed (not left
    open, not reused with an answer still on its way), and the next read opens another."""
    engine = _engine(reader_database, "postgresql")

    async def cancel_a_read() -> tuple[int, Any]:
        reader = create_sign_in_reader(engine)
        assert isinstance(reader, PostgresSignInReader)
        try:
            await reader.read_one(select(func.pg_backend_pid().label("pid")), {})
            [connection] = reader.idle_connections()
            slow = asyncio.ensure_future(reader.read_one(select(func.pg_sleep(5).label("slept")), {}))
            await asyncio.sleep(0.3)
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slow
            assert connection.closed, "the cancelled read's connection was left open"
            kept = len(reader.idle_connections())
            after = await reader.read_one(select(func.pg_backend_pid().label("pid")), {})
            return kept, after
        finally:
            await reader.close()

    try:
        kept, after = _run(cancel_a_read())
    finally:
        engine.dispose()
    assert kept == 0, "the cancelled read's connection was kept"
    assert after.pid > 0


def test_the_sqlite_reader_gives_way_to_a_lock_at_once(reader_database: str) -> None:
    """A lock a read would have to wait for (here another connection's exclusive lock) ends the
    read on the loop within SQLITE_READER_BUSY_SECONDS, not the busy timeout's 10 s."""
    engine = _engine(reader_database, "sqlite")
    holder = sqlite3.connect(engine.url.database or "", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE users SET role = role")
        lookup = session_lookup("s" * 43)
        assert lookup is not None

        async def read() -> BaseException | None:
            reader = create_sign_in_reader(engine)
            assert isinstance(reader, SqliteSignInReader)
            try:
                await reader.read_one(*lookup)
            except BaseException as exc:
                return exc
            finally:
                await reader.close()
            return None

        began = time.monotonic()
        error = _run(read())
        assert isinstance(error, ReaderBusy), error
        assert time.monotonic() - began < 1.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def test_a_lookup_that_meets_a_lock_is_made_in_the_thread_pool(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the loop would wait, the lookup goes to the thread pool, which waits with the busy
    timeout, as every request's did before the reader; the page is served."""
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200

    async def busy(*_args: Any) -> Any:
        raise ReaderBusy("database is locked")

    monkeypatch.setattr(served.app.state.sign_in_reader, "read_one", busy)
    hops = count_calls(monkeypatch, anyio.to_thread, "run_sync")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert len(hops) == 1, "the lookup, in the thread pool"


def test_each_statement_is_read_with_its_own_compiled_form(reader_database: str) -> None:
    """The compiled forms are kept by statement: a statement made and dropped in turn (whose id
    Python may hand to the next one) is never answered with another's SQL or values."""
    engine = _engine(reader_database)

    async def read_each() -> list[int]:
        reader = create_sign_in_reader(engine)
        assert reader is not None
        try:
            return [(await reader.read_one(select(literal(n).label("n")), {})).n for n in range(50)]
        finally:
            await reader.close()

    try:
        assert _run(read_each()) == list(range(50))
    finally:
        engine.dispose()
