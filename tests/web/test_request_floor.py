"""What every signed-in request pays, whatever the page (issue 20's per-request floor): thread-pool
hops and round trips to the database. Each one counts at 16 clients, and on PostgreSQL a round
trip is a network wait."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.db import session_scope
from app.main import create_app
from app.models import ApiToken, Outpost, User, WebSession
from app.models.base import utcnow
from app.services.accounts.sessions import TOUCH_INTERVAL
from app.services.accounts.tokens import create_token
from app.services.audit import Actor
from tests.conftest import DatabaseServer, create_account, make_settings, sign_in
from tests.factories import make_outpost
from tests.support.counting import count_calls, statements_on


@pytest.fixture(scope="module")
def own_database(database_server: DatabaseServer) -> str:
    """A database of this module's own, used through the app's real engine: the shared test
    session runs every test inside one outer transaction, which no real request has."""
    url = database_server.create_migrated("floor")
    app = create_app(make_settings(url))
    with session_scope(app.state.session_factory) as db:
        make_outpost(db, name="Plant 7 Reno", state="CONNECTED")
        create_account(db, "viewer", "viewer")
    app.state.engine.dispose()
    return url


@pytest.fixture
def viewer_on_own_database(own_database: str) -> Iterator[tuple[FastAPI, TestClient, str]]:
    app = create_app(make_settings(own_database))
    with session_scope(app.state.session_factory) as db:
        outpost_id = db.scalars(select(Outpost.outpost_id)).one()
    with TestClient(app, base_url="http://testserver") as client:
        sign_in(client, "viewer")
        yield app, client, f"/outposts/{outpost_id}"
    app.state.engine.dispose()


def _lookup_hops(app: FastAPI) -> int:
    """The sign-in lookup's thread-pool hops: none on PostgreSQL, whose sign-in reader runs it on the
    event loop (`app.db_reader`); one on SQLite."""
    return 0 if app.state.sign_in_reader is not None else 1


def test_a_reused_page_takes_no_thread_pool_hop_but_its_sign_in_lookup(
    viewer_on_own_database: tuple[FastAPI, TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role check looks the sign-in up: on the event loop on PostgreSQL, a hop on SQLite. A
    reused answer is replayed on the event loop, and ending a read transaction that wrote nothing
    does no I/O, so neither takes one. A page built takes a hop for its build; before the tenth
    session a reused one took three (the role check, the page, the transaction's end)."""
    app, viewer, path = viewer_on_own_database
    lookup = _lookup_hops(app)
    # The sign-in's first request in this process records its last-seen (a hop of its own).
    assert viewer.get(path + "?range=6h").status_code == 200
    hops = count_calls(monkeypatch, anyio.to_thread, "run_sync")
    assert viewer.get(path).status_code == 200
    assert len(hops) == lookup + 1, "built: the build"
    hops.clear()
    assert viewer.get(path).status_code == 200
    assert len(hops) == lookup, "reused"
    hops.clear()
    assert viewer.get("/").status_code == 200
    assert viewer.get("/").status_code == 200
    assert len(hops) == 2 * lookup + 1, "the overview: built, then reused"


def test_an_api_answer_reused_takes_no_thread_pool_hop_but_its_token_lookup(
    own_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(own_database))
    with session_scope(app.state.session_factory) as db:
        user = db.scalars(select(User).where(User.username == "viewer")).one()
        raw, _ = create_token(db, user, name="floor", expires_in_days=None, actor=Actor(name="test"))
    headers = {"Authorization": f"Bearer {raw}"}
    with TestClient(app, base_url="http://testserver", headers=headers) as api:
        first = api.get("/api/v1/outposts")
        assert first.status_code == 200
        hops = count_calls(monkeypatch, anyio.to_thread, "run_sync")
        again = api.get("/api/v1/outposts")
        assert again.status_code == 200 and again.content == first.content
        assert len(hops) == _lookup_hops(app)
    app.state.engine.dispose()


def test_a_request_whose_end_writes_ends_in_the_thread_pool(
    viewer_on_own_database: tuple[FastAPI, TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in's last-seen falls due (the clock moved past TOUCH_INTERVAL): it is written after
    the request's transaction, off the event loop, and it lands."""
    app, viewer, path = viewer_on_own_database
    assert viewer.get(path).status_code == 200
    later = (utcnow() + TOUCH_INTERVAL * 2).replace(microsecond=0)
    app.state.clock = lambda: later
    hops = count_calls(monkeypatch, anyio.to_thread, "run_sync")
    assert viewer.get(path).status_code == 200
    assert len(hops) == _lookup_hops(app) + 1, "the end (the page itself is reused)"
    with session_scope(app.state.session_factory) as db:
        seen = db.scalars(select(WebSession.last_seen_at).order_by(WebSession.id.desc())).first()
    assert seen == later


def test_an_api_call_resolves_its_token_and_owner_in_one_statement(
    api_client_as: Any, session: Session
) -> None:
    make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    api: TestClient = api_client_as("viewer")
    assert api.get("/api/v1/outposts").status_code == 200
    with statements_on(session.get_bind()) as statements:
        assert api.get("/api/v1/outposts").status_code == 200
    token_reads = [s for s in statements if "FROM api_tokens" in s]
    assert len(token_reads) == 1 and "JOIN users" in token_reads[0], token_reads
    # No lazy load of the owner after it.
    assert not [s for s in statements if "FROM users" in s], statements


@contextmanager
def orm_loads(*classes: type) -> Iterator[list[str]]:
    """The ORM objects of `classes` built from rows inside the block (by class name)."""
    loaded: list[str] = []
    listeners = []
    for cls in classes:

        def on_load(target: Any, _context: Any, name: str = cls.__name__) -> None:
            loaded.append(name)

        event.listen(cls, "load", on_load)
        listeners.append((cls, on_load))
    try:
        yield loaded
    finally:
        for cls, listener in listeners:
            event.remove(cls, "load", listener)


def test_the_sign_in_check_reads_plain_rows_not_orm_objects(
    client_as: Any, api_client_as: Any, session: Session
) -> None:
    """Every request checks its sign-in: as plain columns, not as a session (or token) object with
    its user, which cost a tenth of a reused page's CPU. A page that changes the session loads the
    row itself (`web_session_of`)."""
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    viewer: TestClient = client_as("viewer")
    api: TestClient = api_client_as("viewer")
    path = f"/outposts/{outpost.outpost_id}"
    assert viewer.get(path).status_code == 200
    assert api.get("/api/v1/outposts").status_code == 200
    with orm_loads(WebSession, ApiToken, User) as loaded:
        assert viewer.get(path).status_code == 200
        assert api.get("/api/v1/outposts").status_code == 200
    assert loaded == []
