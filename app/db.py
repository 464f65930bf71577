"""Engine, sessions and the one place with dialect-specific SQL (the upsert helper).

The edge owns the transaction: web requests commit in the session dependency, jobs in
`session_scope()`. Services only add and flush.
"""

from __future__ import annotations

import logging
import random
import re
import select
import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Integer, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.functions import FunctionElement

log = logging.getLogger(__name__)

# Threads that may hold a connection at once: the web thread pool (set to this size in
# app.main's lifespan), plus APScheduler's executor. A request can hold two (its own session and a
# credential run's), so overflow covers a second one per thread; `pool_timeout` bounds the wait.
WEB_THREADS = 40
SCHEDULER_THREADS = 10
POOL_SIZE = WEB_THREADS + SCHEDULER_THREADS
POOL_OVERFLOW = WEB_THREADS
POOL_TIMEOUT_SECONDS = 30

# SQLite: a writer waits this long for the write lock (busy_timeout), and BEGIN IMMEDIATE is tried
# this many times in all before the error reaches the caller.
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_BEGIN_ATTEMPTS = 3

# Execution option on a session's connection: the transaction will write (SQLite: BEGIN IMMEDIATE).
WRITES = "lifeline_writes"
# Execution option on a read-only request's connection (PostgreSQL): its statements run in
# autocommit until the first one that may write, which begins the transaction (`reader_bind`).
READS = "lifeline_reads"

# PostgreSQL: a pooled connection back in use within this many seconds is not pinged first unless
# its socket has something to read (the server's goodbye when it terminated the session, or EOF).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "lifeline_idle_since"


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the settings each dialect needs."""
    parsed = make_url(url)
    pool: dict[str, Any] = {
        "pool_size": POOL_SIZE,
        "max_overflow": POOL_OVERFLOW,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
    }
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            # The scheduler and the web thread pool share the engine; busy_timeout is set below.
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **({"poolclass": StaticPool} if in_memory else pool),
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, echo=echo, **pool)
    _configure_postgresql(engine)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; we emit BEGIN
        # ourselves (below) so nested transactions and rollback-per-test work as on PostgreSQL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets the dashboard read while the poller writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Foreign keys are off by default in SQLite; we rely on ON DELETE CASCADE.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL is crash-safe with NORMAL; FULL would fsync on every poll commit for no gain.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Wait (bounded) for a concurrent writer instead of failing with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A transaction that will write takes the write lock at BEGIN (IMMEDIATE), where the busy
        # timeout applies. A deferred transaction that reads and then writes cannot wait: if another
        # writer committed since its snapshot, SQLite answers SQLITE_BUSY at once ("database is
        # locked"). Readers stay deferred, so WAL keeps them concurrent with the writer.
        if not conn.get_execution_options().get(WRITES):
            conn.exec_driver_sql("BEGIN")
            return
        for attempt in range(1, SQLITE_BEGIN_ATTEMPTS + 1):
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if not is_locked(exc) or attempt == SQLITE_BEGIN_ATTEMPTS:
                    raise
                log.warning(
                    "SQLite write lock busy for %d ms; retrying (%d)", SQLITE_BUSY_TIMEOUT_MS, attempt
                )
                time.sleep(random.uniform(0.05, 0.25))


def _configure_postgresql(engine: Engine) -> None:
    """Fewer round trips per request, the same guarantees (issue 20: on PostgreSQL a request that
    only checked its sign-in made four, each a network wait: a ping, BEGIN, the lookup, COMMIT).

    - A broken connection is still replaced before use, so the dashboard recovers without a
      restart once the database is back (what `pool_pre_ping` did, SQLAlchemy's "pessimistic"
      recipe with a custom check). It is pinged when it sat idle for `PING_AFTER_IDLE_SECONDS` or
      its socket has input; a server that ends a session (restart, `pg_terminate_backend`, a proxy
      dropping it) says so on the socket, so a connection reused at once needs no ping.
    - A read-only request's statements run in autocommit (`reader_bind`): no BEGIN and COMMIT
      around them. At READ COMMITTED, PostgreSQL's default and ours, each statement of a
      transaction takes its own snapshot anyway, so the reads see the same. The first statement
      that may write (anything but a plain SELECT: INSERT, UPDATE, DELETE, SAVEPOINT, a locking
      SELECT, a WITH) turns autocommit off before it is sent, so it and everything after it form
      one transaction that the request's end commits or rolls back, as for any other request.
    """

    _ping_when_needed(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_before_a_write(
        conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        if not conn.get_execution_options().get(READS):
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection.autocommit and not is_plain_read(statement):
            # psycopg sends BEGIN before this statement; the request's end commits or rolls back.
            dbapi_connection.autocommit = False


def _ping_when_needed(engine: Engine) -> None:
    """Ping a pooled connection at checkout only after `PING_AFTER_IDLE_SECONDS` idle or when its
    socket has input; one that fails is discarded and another checked out (or opened)."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        recent = idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS
        if recent and not has_input(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError(f"connection failed its ping: {exc}") from exc


_LOCKING_READ = re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b", re.IGNORECASE)


def is_plain_read(statement: str) -> bool:
    """A statement that needs no transaction around it: a SELECT that takes no row locks."""
    head = statement.lstrip()[:6]
    return head.upper() == "SELECT" and not _LOCKING_READ.search(statement)


def has_input(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket is readable (a closed or terminated session); True when
    it cannot be told, so the connection is pinged. Also for the sign-in reader's connections."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError, TypeError):
        return True


def is_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "database is busy" (SQLITE_BUSY)."""
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and ("locked" in str(orig) or "busy" in str(orig))


def is_unreachable(exc: BaseException) -> bool:
    """The database cannot be reached (refused, dropped, timed out), as opposed to a bad statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if is_locked(exc):
        return False
    text = str(getattr(exc, "orig", exc)).lower()
    markers = (
        "connection",
        "could not connect",
        "server closed",
        "terminating",
        "timeout",
        "timed out",
        "unable to open database",
        "disk i/o",
        "the database system is",
        "no route",
        "refused",
    )
    return any(marker in text for marker in markers)


def describe_unreachable(exc: BaseException) -> str:
    """A one-line reason without credentials (psycopg messages name host and port, never passwords)."""
    text = str(getattr(exc, "orig", exc)).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, **kwargs)


_WRITERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def writer_bind(bind: Any) -> Any:
    """The same engine (same pool) whose transactions write: on SQLite they BEGIN IMMEDIATE.

    A bind that is a connection (tests run each one inside an outer transaction) is returned as is.
    """
    if not isinstance(bind, Engine):
        return bind
    if bind not in _WRITERS:
        _WRITERS[bind] = bind.execution_options(**{WRITES: True})
    return _WRITERS[bind]


_CHANGES_AT_BEGIN = "lifeline_changes_at_begin"


@event.listens_for(Session, "after_begin")
def _note_changes_at_begin(session: Session, _transaction: Any, connection: Any) -> None:
    # SQLite counts the rows each connection changed: the same count at the end means no write.
    if connection.dialect.name == "sqlite":
        session.info[_CHANGES_AT_BEGIN] = connection.connection.dbapi_connection.total_changes


def wrote_nothing(session: Session) -> bool:
    """Whether `session` has nothing to flush and its transaction wrote nothing, so that ending it
    does no I/O: on PostgreSQL a read request's connection is still in autocommit (`reader_bind`),
    on SQLite its connection changed no row since BEGIN (a read transaction's COMMIT only lets go
    of its snapshot). False when it cannot be told."""
    if session.new or session.dirty or session.deleted:
        return False
    transaction = session.get_transaction()
    if transaction is None:
        return True
    connections = getattr(transaction, "_connections", None)
    if not isinstance(connections, dict):
        return False
    for held in connections.values():
        connection = held[0]
        dbapi_connection = connection.connection.dbapi_connection
        if connection.dialect.name == "postgresql":
            if not (connection.get_execution_options().get(READS) and dbapi_connection.autocommit):
                return False
        elif connection.dialect.name == "sqlite":
            if session.info.get(_CHANGES_AT_BEGIN) != dbapi_connection.total_changes:
                return False
        else:
            return False
    return True


_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def reader_bind(bind: Any) -> Any:
    """The same engine (same pool) for a request that is not expected to write: on PostgreSQL its
    statements run in autocommit until one may write (`_configure_postgresql`). SQLite, where BEGIN
    costs no round trip and a transaction keeps a read's snapshot, and a connection (tests run each
    one inside an outer transaction) are returned as they are."""
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return bind
    if bind not in _READERS:
        _READERS[bind] = bind.execution_options(isolation_level="AUTOCOMMIT", **{READS: True})
    return _READERS[bind]


def writer_session(factory: sessionmaker[Session]) -> Session:
    """A session from `factory` whose transactions take the write lock up front (SQLite)."""
    return factory(bind=writer_bind(factory.kw.get("bind")))


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a job: commit on success, roll back on any error (SQLite: IMMEDIATE)."""
    session = writer_session(factory)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None = None,
) -> None:
    """Insert rows, updating (or ignoring) those whose `conflict_columns` already exist.

    With `update_columns=None` existing rows are left as they are (insert-or-ignore).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert_fn(table)
    if update_columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(conflict_columns),
            set_={name: stmt.excluded[name] for name in update_columns},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_columns))
    # One statement compiled once (and cached) and the rows as executemany parameters: SQLAlchemy
    # batches them into multi-row VALUES within both drivers' parameter limits ("insertmanyvalues").
    # Building `.values([...])` instead compiled one bind parameter per cell on every call.
    session.execute(stmt, list(rows))


class time_bucket(FunctionElement[int]):
    """`time_bucket(column, origin_epoch, seconds)`: which `seconds`-wide bucket after `origin_epoch`
    (Unix seconds) a datetime column falls in, computed in SQL so charts aggregate in the database.

    The second dialect-specific construct besides `upsert`: SQLite stores UTC datetimes as text
    (strftime('%s') parses them), PostgreSQL has EXTRACT(EPOCH ...). Both floor the division.
    """

    type = Integer()
    inherit_cache = True


@compiles(time_bucket, "sqlite")
def _time_bucket_sqlite(element: time_bucket, compiler: Any, **kw: Any) -> str:
    column, origin, seconds = list(element.clauses)
    return (
        f"((CAST(strftime('%s', {compiler.process(column, **kw)}) AS INTEGER) - "
        f"{compiler.process(origin, **kw)}) / {compiler.process(seconds, **kw)})"
    )


@compiles(time_bucket, "postgresql")
def _time_bucket_postgresql(element: time_bucket, compiler: Any, **kw: Any) -> str:
    column, origin, seconds = list(element.clauses)
    return (
        f"CAST(floor((EXTRACT(EPOCH FROM {compiler.process(column, **kw)}) - "
        f"{compiler.process(origin, **kw)}) / {compiler.process(seconds, **kw)}) AS INTEGER)"
    )
