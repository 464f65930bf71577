"""Exactly one poller: the scheduler runs its jobs only while this process leads.

PostgreSQL: every `lifeline serve` (embedded scheduler) and `lifeline scheduler` process holds a
dedicated connection and asks for one session-level advisory lock (`pg_try_advisory_lock`). The
holder leads; the others ask again every few seconds. When the leader dies, even by SIGKILL,
PostgreSQL ends its session and frees the lock, so a standby takes over within one check (well
inside a poll interval). The lock connection is named (`application_name`) after the holder, so
any replica reads who leads from `pg_locks` + `pg_stat_activity`: no table, no lease to expire.

SQLite is one site on one machine: a second scheduler on the same database file is refused at start
with a clear message (an exclusive `flock` on `<database>.scheduler.lock`, released by the kernel
when the process dies). An in-memory database needs no lock.

Chosen over a lease row (`UPDATE ... SKIP LOCKED` with an expiry): the advisory lock is released by
the database the moment the session ends, so there is no expiry to tune against clock skew, and
no write per heartbeat.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# pg_advisory_lock key (any constant works; only Lifeline uses it). Below 2**31, so pg_locks shows it
# as classid 0, objid LOCK_KEY.
LOCK_KEY = 0x4C4C5331
APP_NAME_PREFIX = "lifeline-scheduler "


class SchedulerRefused(RuntimeError):
    """Another scheduler already runs on this SQLite database file."""


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaderInfo:
    """Who runs the scheduled jobs: `holder` ("host:pid") or None when nobody leads."""

    holder: str | None
    mechanism: str  # "postgresql advisory lock", "sqlite file lock", "in-process"


def check_interval(poll_interval_seconds: int) -> float:
    """How often a standby asks for the lock and the leader checks its lock connection."""
    return max(1.0, min(5.0, poll_interval_seconds / 4))


# ---------------------------------------------------------------- SQLite


def sqlite_lock_path(url: str) -> Path | None:
    database = make_url(url).database
    if database in (None, "", ":memory:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + ".scheduler.lock")


class SqliteLock:
    """An exclusive file lock beside the database; `acquire` raises SchedulerRefused when held."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_lock_path(url)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "another process"
            handle.close()
            raise SchedulerRefused(
                f"another Lifeline scheduler ({other}) already runs on the SQLite database "
                f"{str(self.path).removesuffix('.scheduler.lock')} (it holds {self.path}): "
                "SQLite allows one scheduler per database file. Stop it, start this process with "
                "`lifeline serve --no-scheduler`, or move to PostgreSQL, where schedulers elect a leader."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(holder_name())
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def sqlite_leader(url: str) -> LeaderInfo:
    path = sqlite_lock_path(url)
    if path is None:
        return LeaderInfo(None, "in-process")
    if not path.exists():
        return LeaderInfo(None, "sqlite file lock")
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LeaderInfo(handle.read().strip() or "unknown", "sqlite file lock")
        fcntl.flock(handle, fcntl.LOCK_UN)
    return LeaderInfo(None, "sqlite file lock")


# ---------------------------------------------------------------- PostgreSQL


def postgres_leader(conn: Connection) -> LeaderInfo:
    """Read who holds the advisory lock (any connection to the same database)."""
    name = conn.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = 0 AND l.objid = :key AND l.objsubid = 1 LIMIT 1"
        ),
        {"key": LOCK_KEY},
    ).scalar()
    holder = str(name).removeprefix(APP_NAME_PREFIX) if name else None
    return LeaderInfo(holder, "postgresql advisory lock")


def current_leader(engine: Engine, conn: Connection | None = None) -> LeaderInfo:
    """Who leads the scheduled jobs on this database (for /healthz and /metrics)."""
    if engine.dialect.name == "postgresql":
        if conn is not None:
            return postgres_leader(conn)
        with engine.connect() as own:
            return postgres_leader(own)
    return sqlite_leader(str(engine.url))


class PostgresElection:
    """Holds a dedicated connection and, when granted, the advisory lock."""

    def __init__(self, url: str) -> None:
        self.name = holder_name()
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={"application_name": APP_NAME_PREFIX + self.name, "connect_timeout": 5},
        )
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar())

    def still_held(self) -> bool:
        assert self._conn is not None
        held = self._conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = 0 AND objid = :key AND objsubid = 1"
            ),
            {"key": LOCK_KEY},
        ).scalar()
        return bool(held)

    def drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self.drop()
        self._engine.dispose()


# ---------------------------------------------------------------- the elector


class Elector:
    """Runs `on_elected` when this process becomes the leader and `on_lost` when it stops leading.

    On SQLite `start` takes the file lock at once (raising SchedulerRefused) and leads until `stop`.
    On PostgreSQL a daemon thread campaigns every `interval` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float,
        on_elected: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.url, self.interval = url, interval
        self.on_elected, self.on_lost = on_elected, on_lost
        self.is_postgres = make_url(url).get_backend_name() == "postgresql"
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sqlite: SqliteLock | None = None
        self._pg: PostgresElection | None = None

    @property
    def mechanism(self) -> str:
        return "postgresql advisory lock" if self.is_postgres else "sqlite file lock"

    def start(self) -> None:
        if not self.is_postgres:
            self._sqlite = SqliteLock(self.url)
            self._sqlite.acquire()
            self._become_leader()
            return
        self._pg = PostgresElection(self.url)
        self._thread = threading.Thread(target=self._campaign, name="lifeline-elector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
        if self.leading:
            self._step_down()
        if self._pg is not None:
            self._pg.close()
        if self._sqlite is not None:
            self._sqlite.release()

    def _become_leader(self) -> None:
        self.leading = True
        log.info("scheduler leader: %s (%s)", holder_name(), self.mechanism)
        self.on_elected()

    def _step_down(self) -> None:
        self.leading = False
        log.warning("scheduler %s no longer leads; its jobs are stopped", holder_name())
        try:
            self.on_lost()
        except Exception:
            log.exception("stopping the scheduler's jobs failed")

    def _campaign(self) -> None:
        assert self._pg is not None
        while not self._stop.is_set():
            try:
                if not self.leading:
                    if self._pg.try_acquire():
                        self._become_leader()
                elif not self._pg.still_held():
                    self._step_down()
            except Exception as exc:
                # The database went away: PostgreSQL frees the lock with the session, so stop the
                # jobs before someone else starts them.
                log.warning("leader election: database unreachable (%s)", _first_line(exc))
                if self.leading:
                    self._step_down()
                self._pg.drop()
            self._stop.wait(self.interval)


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", exc)).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__


def describe(info: LeaderInfo) -> dict[str, Any]:
    return {"leader": info.holder, "election": info.mechanism}
