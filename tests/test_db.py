"""The database layer's connections (app/db.py): what a read-only request sends to PostgreSQL and
how a broken connection is replaced (issue 20: on PostgreSQL every round trip is a network wait;
a reused page made four where one is needed). Runs on SQLite and on PostgreSQL; the cases that only
PostgreSQL has (a server that ends a session, autocommit) say so when skipped on SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app import db as app_db
from app.db import (
    create_db_engine,
    is_plain_read,
    make_session_factory,
    reader_bind,
    session_scope,
    wrote_nothing,
)
from app.main import create_app
from app.models import Outpost
from tests.conftest import DatabaseServer, create_account, make_settings, sign_in
from tests.factories import make_outpost
from tests.support.counting import WireTrace, count_calls, round_trips, statements_on


@pytest.fixture
def scratch(database_server: DatabaseServer) -> Iterator[Engine]:
    """An engine on an empty database of its own with one table, `t (a int)`."""
    engine = create_db_engine(database_server.create("dbconn"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
    yield engine
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def _postgresql_only(engine: Engine, why: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip(why)


def test_a_read_request_that_writes_keeps_its_writes_in_one_transaction(scratch: Engine) -> None:
    """A GET may write (a download's audit event, an expired session's deletion): whatever the
    request's reads ran in, its writes commit together or not at all."""
    factory = make_session_factory(reader_bind(scratch))
    with pytest.raises(RuntimeError), factory() as db:
        db.execute(text("SELECT count(*) FROM t"))
        db.execute(text("INSERT INTO t VALUES (1)"))
        db.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("the request failed after writing")
    assert _count(scratch) == 0
    with factory() as db:
        db.execute(text("SELECT count(*) FROM t"))
        db.execute(text("INSERT INTO t VALUES (1)"))
        db.execute(text("INSERT INTO t VALUES (2)"))
        assert _count(scratch) == 0, "a write was visible before its request committed"
        db.commit()
    assert _count(scratch) == 2


def test_a_read_requests_reads_run_without_a_transaction_on_postgresql_in_one_on_sqlite(
    scratch: Engine,
) -> None:
    """PostgreSQL: no BEGIN and COMMIT around reads (at READ COMMITTED each statement has its own
    snapshot anyway); the first write, or a read that locks rows, begins the transaction. SQLite:
    BEGIN costs nothing there and a deferred transaction keeps one snapshot for the request."""
    factory = make_session_factory(reader_bind(scratch))
    with factory() as db:
        db.execute(text("SELECT count(*) FROM t"))
        dbapi: Any = db.connection().connection.dbapi_connection
        if scratch.dialect.name == "sqlite":
            assert reader_bind(scratch) is scratch
            assert dbapi.in_transaction, "SQLite reads keep their snapshot in a transaction"
            return
        assert dbapi.info.transaction_status.name == "IDLE"
        db.execute(text("SELECT a FROM t FOR UPDATE"))
        assert dbapi.info.transaction_status.name == "INTRANS", "a locking read must hold its locks"
        db.rollback()
    # The connection goes back to the pool in the engine's own mode: a plain session is transactional.
    with make_session_factory(scratch)() as db:
        db.execute(text("SELECT 1"))
        assert db.connection().connection.dbapi_connection.info.transaction_status.name == "INTRANS"


@pytest.mark.parametrize(
    ("statement", "plain"),
    [
        ("SELECT 1", True),
        ("  select a FROM t WHERE a = 1", True),
        ("SELECT a FROM t FOR UPDATE", False),
        ("SELECT a FROM t FOR NO KEY UPDATE SKIP LOCKED", False),
        ("SELECT a FROM t\nFOR SHARE", False),
        ("INSERT INTO t VALUES (1)", False),
        ("WITH x AS (DELETE FROM t RETURNING a) SELECT * FROM x", False),
        ("SAVEPOINT sa_savepoint_1", False),
    ],
)
def test_only_a_select_that_locks_nothing_runs_outside_a_transaction(statement: str, plain: bool) -> None:
    assert is_plain_read(statement) is plain


def test_a_reused_page_costs_its_sign_in_lookup_and_nothing_else(
    database_server: DatabaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-in reader's lookup, on the event loop, and nothing on the request's own session
    (`app.db_reader`). On PostgreSQL that is one round trip on the wire; before, a ping, BEGIN and
    COMMIT came with it."""
    app = create_app(make_settings(database_server.create_migrated("trips")))
    engine = app.state.engine
    with session_scope(app.state.session_factory) as db:
        outpost_id = make_outpost(db, name="Plant 7 Reno", state="CONNECTED").outpost_id
    with session_scope(app.state.session_factory) as db:
        create_account(db, "viewer", "viewer")
    on_postgresql = engine.dialect.name == "postgresql"
    with TestClient(app, base_url="http://testserver") as client:
        reader = app.state.sign_in_reader
        traces = [WireTrace(engine, tmp_path), WireTrace(None, tmp_path)] if on_postgresql else []
        sign_in(client, "viewer")
        path = f"/outposts/{outpost_id}"
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 200
        if on_postgresql:
            for connection in reader.idle_connections():
                traces[1].add(connection)
        app.state.data_version.memo = 3600  # the version was read; this request only reuses it
        mark = WireTrace.mark()
        reads = count_calls(monkeypatch, reader, "read_one")
        with statements_on(engine) as statements:
            assert client.get(path).status_code == 200
        trips = [round_trips(trace.messages_since(mark)) for trace in traces]
    engine.dispose()
    assert statements == [], "the request's own session sends nothing, not even BEGIN"
    assert len(reads) == 1, "the sign-in reader's lookup"
    if on_postgresql:
        engine_trips, reader_trips = trips
        assert engine_trips == [], engine_trips
        assert len(reader_trips) == 1 and "SELECT sessions.id" in reader_trips[0], reader_trips


def test_a_connection_the_server_ended_is_replaced_before_it_is_used(
    scratch: Engine, database_server: DatabaseServer
) -> None:
    """A restart or `pg_terminate_backend` ends pooled sessions; the next request gets a working
    connection, without waiting for the idle time after which every connection is pinged."""
    _postgresql_only(scratch, "a server that ends a session is PostgreSQL's case")
    with scratch.connect() as conn:
        old_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert database_server.base_url
    admin = create_db_engine(database_server.base_url)
    try:
        # Autocommit: inside one transaction pg_stat_activity is read once and never changes.
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old_pid})
            deadline = time.monotonic() + 10
            alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while conn.execute(alive, {"pid": old_pid}).scalar_one():
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        admin.dispose()
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != old_pid


def test_a_connection_back_in_use_at_once_is_not_pinged_one_idle_for_a_while_is(
    scratch: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgresql_only(scratch, "pings are PostgreSQL's: SQLite opens a file")
    with scratch.connect() as conn:
        conn.execute(text("SELECT 1"))
    pings = count_calls(monkeypatch, scratch.dialect, "do_ping")
    with scratch.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with scratch.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1


def test_a_transaction_that_wrote_nothing_is_told_from_one_that_wrote(scratch: Engine) -> None:
    """What lets the web end a read request on the event loop: a commit that does no I/O. Any write,
    and anything left to flush, sends it to the thread pool."""
    factory = make_session_factory(reader_bind(scratch))
    with factory() as db:
        assert wrote_nothing(db)
        db.execute(text("SELECT count(*) FROM t"))
        assert wrote_nothing(db)
        db.execute(text("INSERT INTO t VALUES (1)"))
        assert not wrote_nothing(db)
        db.rollback()
    with factory() as db:
        db.execute(text("SELECT count(*) FROM t"))
        db.execute(text("UPDATE t SET a = 2 WHERE a = 1"))
        on_sqlite = scratch.dialect.name == "sqlite"
        # SQLite counts changed rows (none here, and its COMMIT then writes nothing either);
        # PostgreSQL began a transaction for the UPDATE, whose COMMIT is a round trip.
        assert wrote_nothing(db) is on_sqlite
        db.rollback()
    with make_session_factory(scratch)() as db:
        db.execute(text("SELECT 1"))
        # A transaction begun the usual way (a form post's) on PostgreSQL: its COMMIT is a round trip.
        assert wrote_nothing(db) is (scratch.dialect.name == "sqlite")


def test_something_left_to_flush_is_a_write(session: Session) -> None:
    session.add(Outpost(outpost_id="op-00000000000000071", name="Plant 7 Reno", region="us-west-2"))
    assert not wrote_nothing(session)
