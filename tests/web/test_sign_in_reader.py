"""The sign-in check on the event loop (PostgreSQL's sign-in reader, `app.db.create_sign_in_reader`)
decides as the request's own session did: every request reads its row, so a session ended or a
token revoked elsewhere (another process, an admin) is refused at once, and an idle session is sent
to sign in again. Runs on both databases: on SQLite the same checks go through the thread pool,
on PostgreSQL the tests also check that the reader answered."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db as app_db
from app.db import create_db_engine, create_sign_in_reader, session_scope
from app.main import create_app
from app.models import ApiToken, User, WebSession
from app.models.base import utcnow
from app.services.accounts.tokens import create_token
from app.services.audit import Actor
from tests.conftest import DatabaseServer, create_account, make_settings, sign_in
from tests.support.counting import count_calls, statements_on


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

    def reader_statements(self) -> AbstractContextManager[list[str]]:
        """The statements the sign-in reader sends (none on SQLite, which has no reader)."""
        reader: AsyncEngine | None = self.app.state.sign_in_reader
        return nullcontext([]) if reader is None else statements_on(reader.sync_engine)


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


def test_the_reader_answers_a_signed_in_request_on_postgresql(served: Served) -> None:
    sign_in(served.client, "viewer")
    with served.reader_statements() as statements:
        assert served.client.get("/", follow_redirects=False).status_code == 200
    lookups = [s for s in statements if "FROM sessions" in s]
    assert len(lookups) == (1 if _on_postgresql(served) else 0), statements


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


def test_a_token_revoked_elsewhere_is_refused_at_its_next_call(served: Served) -> None:
    with session_scope(served.app.state.session_factory) as db:
        user = db.scalars(select(User).where(User.username == "viewer")).one()
        raw, _ = create_token(db, user, name="reader", expires_in_days=None, actor=Actor(name="test"))
    headers = {"Authorization": f"Bearer {raw}"}
    with served.reader_statements() as statements:
        me = served.client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "viewer"
    assert len([s for s in statements if "FROM api_tokens" in s]) == (1 if _on_postgresql(served) else 0)
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
        pytest.skip("a server that ends a session is PostgreSQL's case (SQLite has no reader)")
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


def test_the_reader_is_made_only_for_an_engine_on_postgresql(database_server: DatabaseServer) -> None:
    """Not for SQLite (its waits would block the event loop) and not for a single connection (a
    test's shared transaction, whose rows another connection cannot see)."""
    engine = create_db_engine(database_server.create("readerkind"))
    try:
        reader = create_sign_in_reader(engine)
        assert (reader is not None) is (engine.dialect.name == "postgresql")
        if reader is not None:
            assert reader.sync_engine.url == engine.url
            assert reader.sync_engine.dialect.driver == "psycopg"
            assert reader.sync_engine.pool.checkedout() == 0, "it connects at its first lookup"
        with engine.connect() as connection:
            assert create_sign_in_reader(connection) is None
    finally:
        engine.dispose()


def test_a_reader_connection_back_in_use_at_once_is_not_pinged(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the main engine's: a ping is a second round trip, only after a second idle or when the
    socket says the server ended the session (the adapter's socket is psycopg's own)."""
    if not _on_postgresql(served):
        pytest.skip("pings are PostgreSQL's (SQLite has no reader)")
    sign_in(served.client, "viewer")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    reader: AsyncEngine = served.app.state.sign_in_reader
    pings = count_calls(monkeypatch, reader.sync_engine.dialect, "do_ping")
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert pings == []
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert served.client.get("/", follow_redirects=False).status_code == 200
    assert len(pings) == 1
