"""PostgreSQL: the one read every signed-in request makes (its session or token), on the event loop.

The role check of every request looks its sign-in up. Run through the request's own Session it
takes a thread-pool hop; this reader runs it on the event loop with psycopg's async connections
instead, so a reused page takes no hop at all (issue 20's per-request floor).

- **The same statement.** A SQLAlchemy `Select` is compiled once for the engine's dialect; its
  rows come back through the columns' own result processors (`UTCDateTime` included), as named
  tuples with the columns' labels, so the code that judges a row (`sessions.signed_in_from`,
  `tokens.live_token_from`) serves both paths.
- **One round trip.** Connections are in autocommit (no BEGIN or COMMIT around a single read) and
  kept for reuse, most recently used first; a connection back in use at once is not pinged unless
  its socket has input, as for the main engine (`app.db.PING_AFTER_IDLE_SECONDS`).
- **Fails at once.** With the database away a read raises SQLAlchemy's `OperationalError` as soon
  as the connection is refused, which the error handlers answer with a 503, as for any read. A
  pool library would queue the request behind its background reconnects until its timeout
  (psycopg_pool's `getconn`), so the reader keeps its few connections itself. At most
  `SIGN_IN_READER_CONNECTIONS` are open at once; a read waits for one beyond that (a single round
  trip each, so briefly).
- Parameters are never shown in an error (they hold a token's hash).

Made in the app's lifespan (its connections belong to the loop that serves), for a PostgreSQL
engine on psycopg only: not on SQLite, where a busy or pool wait would block the loop, and not for a
test's shared connection, whose uncommitted rows another connection cannot see
(`create_sign_in_reader`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from app import db as app_db

if TYPE_CHECKING:
    from sqlalchemy import Select

    # A SELECT of any columns (SQLAlchemy 2.1's Select is generic in its columns' types).
    AnySelect = Select[*tuple[Any, ...]]

# Connections open at once; as many are kept idle for reuse.
SIGN_IN_READER_CONNECTIONS = 16


class _Compiled:
    """A statement compiled for one dialect: its SQL, and how to turn a row into a named tuple."""

    def __init__(self, statement: AnySelect, engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        # Values bound in the statement itself; the caller's parameters are added to them.
        self.bound = dict(compiled.params)
        columns = list(statement.selected_columns)
        dialect = engine.dialect
        self.processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.row: Any = collections.namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]

    def build(self, values: tuple[Any, ...]) -> Any:
        pairs = zip(self.processors, values, strict=True)
        return self.row(*[value if fn is None else fn(value) for fn, value in pairs])


class SignInReader:
    """One-statement reads on the event loop, on connections of its own (see the module)."""

    def __init__(self, engine: Engine, *, connections: int = SIGN_IN_READER_CONNECTIONS) -> None:
        self.engine = engine
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._connect_kwargs: dict[str, Any] = {**kwargs, "autocommit": True}
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._slots = asyncio.Semaphore(connections)
        self._compiled: dict[int, _Compiled] = {}
        self._closed = False

    async def read_one(self, statement: AnySelect, params: Mapping[str, Any]) -> Any:
        """The first row of `statement` (a named tuple of its columns' values), or None."""
        compiled = self._compiled_for(statement)
        async with self._slots:
            try:
                connection = await self._checkout()
                try:
                    cursor = await connection.execute(compiled.sql, {**compiled.bound, **params})
                    values = await cursor.fetchone()
                except BaseException:
                    # Broken, or cancelled half-way through a round trip: never reused.
                    await connection.close()
                    raise
            except psycopg.Error as exc:
                raise DBAPIError.instance(
                    compiled.sql,
                    params,
                    exc,
                    psycopg.Error,
                    hide_parameters=True,
                    dialect=self.engine.dialect,
                ) from exc
            self._checkin(connection)
        return None if values is None else compiled.build(values)

    def _compiled_for(self, statement: AnySelect) -> _Compiled:
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            # The statements are module constants, built once at import: their ids are stable.
            compiled = self._compiled[id(statement)] = _Compiled(statement, self.engine)
        return compiled

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


def create_sign_in_reader(bind: Any) -> SignInReader | None:
    """The reader for the app's bind: a PostgreSQL Engine on psycopg, else None (the request's own
    session reads the sign-in, in the thread pool)."""
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql" or bind.dialect.driver != "psycopg":
        return None
    return SignInReader(bind)
