"""Counting what ran: calls of a function a test patches in place (how many times a read ran), the
SQL statements sent on a connection, and PostgreSQL's round trips on the wire."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Replace `owner.name` with a wrapper that appends 1 to the returned list on every call."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


@contextmanager
def statements_on(bind: Any) -> Iterator[list[str]]:
    """The SQL statements sent on `bind` (an engine or a connection) inside the block."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(bind, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(bind, "before_cursor_execute", seen)


class WireTrace:
    """PostgreSQL's wire protocol as libpq traces it, for every connection `engine` opens from now on
    (its pool is emptied first): what a request really costs in round trips, including what psycopg
    sends by itself (BEGIN, COMMIT) and SQLAlchemy's pings, which no cursor event sees. With no
    engine, only the connections given to `add` (the sign-in reader's)."""

    def __init__(self, engine: Any, folder: Any) -> None:
        self.engine = engine
        self.folder = folder
        self.traced: list[tuple[Any, Any]] = []
        if engine is not None:
            engine.dispose()
            event.listen(engine, "connect", self._trace)

    def _trace(self, dbapi_connection: Any, _record: Any) -> None:
        self.add(dbapi_connection)

    def add(self, connection: Any) -> None:
        """Trace `connection` (a psycopg connection, sync or async) from now on."""
        handle = (self.folder / f"wire-{id(self)}-{len(self.traced)}.log").open("w")
        connection.pgconn.trace(handle.fileno())
        self.traced.append((connection, handle))

    def messages_since(self, mark: str) -> list[str]:
        """Every message sent or received at or after `mark` (libpq's timestamp format, local time);
        ends the trace (libpq flushes it only then)."""
        if self.engine is not None:
            event.remove(self.engine, "connect", self._trace)
        lines: list[str] = []
        for dbapi_connection, handle in self.traced:
            if not dbapi_connection.closed:
                dbapi_connection.pgconn.untrace()
            handle.close()
            lines += Path(handle.name).read_text().splitlines()
        return sorted(line for line in lines if line[:26] >= mark)

    @staticmethod
    def mark() -> str:
        return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")


def round_trips(messages: list[str]) -> list[str]:
    """What the client sent for each answer it waited for: one entry per ReadyForQuery."""
    sent: list[str] = []
    trips: list[str] = []
    for line in messages:
        fields = line.split("\t")
        if len(fields) < 4:
            continue
        if fields[1] == "F" and fields[3] in ("Query", "Parse"):
            sent.append(fields[4].strip() if len(fields) > 4 else fields[3])
        elif fields[1] == "B" and fields[3] == "ReadyForQuery":
            trips.append(" / ".join(sent))
            sent = []
    return trips
