"""Engine, sessions and the one place with dialect-specific SQL (the upsert helper).

The edge owns the transaction: web requests commit in the session dependency, jobs in
`session_scope()`. Services only add and flush.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Integer, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.functions import FunctionElement


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the settings each dialect needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            # The scheduler and the web thread pool share the engine.
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


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
        # Wait for a concurrent writer instead of failing with "database is locked".
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, **kwargs)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a job: commit on success, roll back on any error."""
    session = factory()
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
    # Keep statements under the bind-parameter limits of both drivers.
    per_row = max(1, len(rows[0]))
    chunk = max(1, 30000 // per_row)
    for start in range(0, len(rows), chunk):
        stmt = insert_fn(table).values(list(rows[start : start + chunk]))
        if update_columns:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(conflict_columns),
                set_={name: stmt.excluded[name] for name in update_columns},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_columns))
        session.execute(stmt)


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
