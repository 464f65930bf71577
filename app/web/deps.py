"""Request-scoped dependencies: the database session (the edge commits) and settings.

One write transaction per request: a request that may write (any method but GET/HEAD/OPTIONS)
takes SQLite's write lock when its transaction begins (BEGIN IMMEDIATE, where the busy timeout
applies); reads stay deferred and run beside the writer under WAL. On PostgreSQL a read request's
statements run in autocommit until one may write, which begins its transaction
(`app.db.reader_bind`). Sign-in bookkeeping (a session's last-seen, a token's last-used) is written
after the request's transaction, in its own short one, at most once per interval per session or
token, so a request never holds a lock on a row that every other request of the same user also
wants (the PostgreSQL deadlock of issue 11).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.db import reader_bind, session_scope, writer_bind, wrote_nothing
from app.models.base import utcnow
from app.services.accounts.sessions import TOUCH_INTERVAL, record_session_seen
from app.services.accounts.tokens import LAST_USED_INTERVAL, record_token_used
from app.settings import Settings

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Bookkeeping:
    """Per process: when each session / token was last recorded, so most requests write nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorded: dict[tuple[str, int], dt.datetime] = {}

    def due(self, kind: str, row_id: int, now: dt.datetime, interval: dt.timedelta) -> bool:
        with self._lock:
            last = self._recorded.get((kind, row_id))
            if last is not None and now - last < interval:
                return False
            if len(self._recorded) > 100_000:
                self._recorded.clear()
            self._recorded[(kind, row_id)] = now
            return True


def _bookkeeping(request: Request) -> Bookkeeping:
    state = request.app.state
    if not hasattr(state, "bookkeeping"):
        state.bookkeeping = Bookkeeping()
    keeper: Bookkeeping = state.bookkeeping
    return keeper


def bookkeeping_due(request: Request) -> list[tuple[str, int]]:
    """The principal's last-seen / last-used records due now (marked as recorded): ("session", id),
    ("token", id). No I/O: most requests have none due."""
    principal: Any = getattr(request.state, "principal", None)
    if principal is None:
        return []
    # The app's clock (tests move it), as the sign-in check used.
    now: dt.datetime = getattr(request.app.state, "clock", utcnow)()
    keeper = _bookkeeping(request)
    due: list[tuple[str, int]] = []
    session_id = getattr(principal, "session_id", None)
    token_id = getattr(principal, "token_id", None)
    if session_id is not None and keeper.due("session", session_id, now, TOUCH_INTERVAL):
        due.append(("session", session_id))
    if token_id is not None and keeper.due("token", token_id, now, LAST_USED_INTERVAL):
        due.append(("token", token_id))
    return due


def record_bookkeeping(request: Request, due: list[tuple[str, int]]) -> None:
    """Record what `bookkeeping_due` found due, each in its own transaction; never fails the
    request."""
    if not due:
        return
    now: dt.datetime = getattr(request.app.state, "clock", utcnow)()
    factory: sessionmaker[Session] = request.app.state.session_factory
    try:
        for kind, row_id in due:
            with session_scope(factory) as db:
                if kind == "session":
                    record_session_seen(db, row_id, now=now)
                else:
                    record_token_used(db, row_id, now=now)
    except Exception as exc:  # bookkeeping: the next request records it
        log.warning("could not record sign-in bookkeeping: %s", exc)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: commit on success, roll back on error.

    `async`, with the end in the thread pool when it does I/O: making a Session does none (it
    connects at its first statement), and neither does ending a read request's transaction that
    wrote nothing with no sign-in bookkeeping due (`app.db.wrote_nothing`), so that end runs here,
    on the event loop. A plain generator took two thread-pool hops per request, one to start it and
    one to end it (issue 20's per-request floor); a reused page now takes none for its session."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    if request.method in READ_METHODS:
        # PostgreSQL: no BEGIN and COMMIT around the reads; a write begins the transaction.
        session = factory(bind=reader_bind(factory.kw.get("bind")))
    else:
        session = factory(bind=writer_bind(factory.kw.get("bind")))
    request.state.db_session = session
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_end, request, session, commit=False)
        raise
    due = bookkeeping_due(request)
    if not due and request.method in READ_METHODS and wrote_nothing(session):
        _end(request, session, commit=True)
        return
    await run_in_threadpool(_end, request, session, commit=True, due=due)


def _end(
    request: Request, session: Session, *, commit: bool, due: list[tuple[str, int]] | None = None
) -> None:
    """The request transaction's end: commit (or roll back), close, then the sign-in bookkeeping
    that was due, in its own transactions (after a commit only)."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if commit and due:
        record_bookkeeping(request, due)


def end_request_transaction(request: Request) -> None:
    """Commit the request's transaction now, before work that runs in its own sessions (a credential
    run): on SQLite the request would otherwise hold the write lock those sessions wait for, and a
    read snapshot older than the rows they commit. The next statement begins a new transaction."""
    session: Session | None = getattr(request.state, "db_session", None)
    if session is not None and session.in_transaction():
        session.commit()


async def get_app_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request for a read
    # of app state (issue 20's per-request cost).
    settings: Settings = request.app.state.settings
    return settings


# scope="function": commit before the response is sent, so a failed commit is never reported as
# success to the client.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_app_settings)]

# Integer primary keys are 32-bit on PostgreSQL: a larger id must be refused as bad input (422),
# not reach the database and come back as a 500.
MAX_ROW_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
OptionalRowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
