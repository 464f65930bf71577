"""The one read every signed-in request makes (its session or token), on the event loop.

The role check of every request looks its sign-in up. Run through the request's own Session it
takes a thread-pool hop; a reader runs it on the event loop instead, so a reused page takes no hop
at all (issue 20's per-request floor).

- **The same statement.** A SQLAlchemy `Select` is compiled once for the engine's dialect; its
  parameters pass through their types' bind processors and its rows through the columns' result
  processors (`UTCDateTime` included), as named tuples with the columns' labels, so the code that
  judges a row (`sessions.signed_in_from`, `tokens.live_token_from`) serves both paths.
- **PostgreSQL** (`PostgresSignInReader`): psycopg's async connections in autocommit (one round
  trip, no BEGIN or COMMIT), kept for reuse, most recently used first; a connection back in use at
  once is not pinged unless its socket has input, as for the main engine
  (`app.db.PING_AFTER_IDLE_SECONDS`). With the database away a read raises SQLAlchemy's
  `OperationalError` as soon as the connection is refused, which the error handlers answer with a
  503. A pool library would queue the request behind its background reconnects until its timeout
  (psycopg_pool's `getconn`), so the reader keeps its few connections itself: at most
  `SIGN_IN_READER_CONNECTIONS` open; a read waits for one beyond that (briefly: one round trip
  each). A read cancelled half-way closes its connection.
- **SQLite** (`SqliteSignInReader`): one read-only connection of its own, used only on the loop's
  thread, in autocommit. Under WAL a read does not wait for the writer; should it meet a lock
  anyway (a checkpoint that resets the log), it gives up after `SQLITE_READER_BUSY_SECONDS`
  (`ReaderBusy`) and the lookup goes to the thread pool, so the loop is never held longer.
- Parameters are never shown in an error (they hold a token's hash).

Made in the app's lifespan (its connections belong to the loop that serves): not for a test's
shared connection, whose uncommitted rows another connection cannot see, nor for an in-memory
SQLite database, which another connection would not share (`create_sign_in_reader`).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from app import db as app_db

if TYPE_CHECKING:
    from sqlalchemy import Select

    # A SELECT of any columns (SQLAlchemy 2.1's Select is generic in its columns' types).
    AnySelect = Select[*tuple[Any, ...]]

# PostgreSQL: connections open at once; as many are kept idle for reuse.
SIGN_IN_READER_CONNECTIONS = 16
# SQLite: the longest a lookup on the event loop waits for a lock before it goes to the thread pool.
SQLITE_READER_BUSY_SECONDS = 0.05


class ReaderBusy(Exception):
    """SQLite: the reader met a lock it would have to wait for; the lookup goes to the thread pool."""


class _Compiled:
    """A statement compiled for one dialect: its SQL, its parameters as the driver takes them, and
    how to turn a row into a named tuple."""

    def __init__(self, statement: AnySelect, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.dialect = dialect
        self.sql = compiled.string
        # Values bound in the statement itself; the caller's parameters are added to them.
        self.bound = dict(compiled.params)
        self.positions = compiled.positiontup  # qmark style (SQLite): the order of the values
        processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        self.bind_processors = {name: fn for name, fn in processors.items() if fn is not None}
        columns = list(statement.selected_columns)
        self.processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.row: Any = collections.namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        values = {**self.bound, **params}
        for name, fn in self.bind_processors.items():
            if name in values:
                values[name] = fn(values[name])
        return values if self.positions is None else tuple(values[name] for name in self.positions)

    def build(self, values: Sequence[Any]) -> Any:
        pairs = zip(self.processors, values, strict=True)
        return self.row(*[value if fn is None else fn(value) for fn, value in pairs])

    def error(self, params: Mapping[str, Any], exc: Exception, base: type) -> Exception:
        """The driver's error as SQLAlchemy's (what the error handlers answer), parameters hidden."""
        return DBAPIError.instance(self.sql, params, exc, base, hide_parameters=True, dialect=self.dialect)


class SignInReader:
    """One-statement reads on the event loop (see the module); `read_one` per database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # By the statement's id, with the statement itself: holding it keeps the id from being
        # reused by another statement while the entry exists.
        self._compiled: dict[int, tuple[AnySelect, _Compiled]] = {}

    async def read_one(self, statement: AnySelect, params: Mapping[str, Any]) -> Any:
        """The first row of `statement` (a named tuple of its columns' values), or None."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _compiled_for(self, statement: AnySelect) -> _Compiled:
        held = self._compiled.get(id(statement))
        if held is not None and held[0] is statement:
            return held[1]
        # The lookups are module constants, built once at import: each is compiled once.
        compiled = _Compiled(statement, self.engine.dialect)
        self._compiled[id(statement)] = (statement, compiled)
        return compiled


class PostgresSignInReader(SignInReader):
    """psycopg's async connections, kept for reuse (see the module)."""

    def __init__(self, engine: Engine, *, connections: int = SIGN_IN_READER_CONNECTIONS) -> None:
        super().__init__(engine)
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect_kwargs: dict[str, Any] = {**kwargs, "autocommit": True}
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._slots = asyncio.Semaphore(connections)
        self._closed = False

    async def read_one(self, statement: AnySelect, params: Mapping[str, Any]) -> Any:
        compiled = self._compiled_for(statement)
        async with self._slots:
            try:
                connection = await self._checkout()
                try:
                    cursor = await connection.execute(compiled.sql, compiled.parameters(params))
                    values = await cursor.fetchone()
                except BaseException:
                    # Broken, or cancelled half-way through a round trip: never reused.
                    await connection.close()
                    raise
            except psycopg.Error as exc:
                raise compiled.error(params, exc, psycopg.Error) from exc
            self._checkin(connection)
        return None if values is None else compiled.build(values)

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            connection, idle_since = self._idle.pop()
            if connection.closed:
                continue
            recent = time.monotonic() - idle_since < app_db.PING_AFTER_IDLE_SECONDS
            if recent and not app_db.has_input(connection):
                return connection
            if await self.ping(connection):
                return connection
        return await psycopg.AsyncConnection.connect(**self._connect_kwargs)

    async def ping(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        """Whether `connection` still answers; one that does not is closed."""
        try:
            await connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            await connection.close()
            return False

    def _checkin(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if self._closed or connection.closed:
            return
        self._idle.append((connection, time.monotonic()))

    def idle_connections(self) -> list[psycopg.AsyncConnection[Any]]:
        """The connections kept for reuse, most recently used last (diagnostics and tests)."""
        return [connection for connection, _ in self._idle]

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.close()


class SqliteSignInReader(SignInReader):
    """One read-only connection, on the loop's thread only (see the module)."""

    def __init__(self, engine: Engine, path: str) -> None:
        super().__init__(engine)
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def read_one(self, statement: AnySelect, params: Mapping[str, Any]) -> Any:
        compiled = self._compiled_for(statement)
        try:
            connection = self._connect()
            # fetchall: the statement ends here, so no read snapshot stays open between requests.
            rows = connection.execute(compiled.sql, compiled.parameters(params)).fetchall()
        except sqlite3.Error as exc:
            if app_db.is_locked(exc):
                raise ReaderBusy(str(exc)) from exc
            raise compiled.error(params, exc, sqlite3.Error) from exc
        return compiled.build(rows[0]) if rows else None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.path, timeout=SQLITE_READER_BUSY_SECONDS, isolation_level=None)
            connection.execute("PRAGMA query_only = ON")
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def create_sign_in_reader(bind: Any) -> SignInReader | None:
    """The reader for the app's bind, or None (the request's own session reads the sign-in, in the
    thread pool): an Engine on psycopg or on a SQLite file only."""
    if not isinstance(bind, Engine):
        return None
    if bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg":
        return PostgresSignInReader(bind)
    database = bind.url.database
    if (
        bind.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        return SqliteSignInReader(bind, database)
    return None
