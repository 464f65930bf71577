"""50 concurrent clients for LOAD_SECONDS against a real uvicorn server (issue 11), on the overview and
`GET /api/v1/outposts`: once all sharing one API token and one session, once each with its own
account, token and sign-in. Zero errors: any answer but 200, any transport error and any timeout
(the client waits CLIENT_TIMEOUT seconds, far beyond any healthy answer) counts. The request count is
printed (run with -s); no time is asserted.

Runs on SQLite, or on PostgreSQL when LIFELINE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from app.db import create_db_engine, make_session_factory
from app.services.accounts.tokens import create_token
from app.services.audit import Actor
from app.web.security import CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import TEST_PASSWORD, DatabaseServer, create_account, free_port
from tests.factories import make_outposts

CLIENTS = 50
LOAD_SECONDS = 30  # the figure; CI runs it as is
CLIENT_TIMEOUT = 30.0
# Each client alternates two connections, so one sits idle while the other waits. uvicorn closes a
# connection idle for 5 s (its keep-alive timeout) and httpx kept its own for 5 s too: a request
# sent as the server's close arrived failed with RemoteProtocolError, a race of the harness (a
# browser retries such a request). The clients let idle connections go first.
LIMITS = httpx.Limits(keepalive_expiry=2.0)
PATHS = ("/", "/api/v1/outposts")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@dataclass
class Tally:
    ok: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str | None) -> None:
        with self.lock:
            if outcome is None:
                self.ok += 1
            else:
                self.errors[outcome] += 1


@dataclass
class Server:
    base: str
    log: Path


@pytest.fixture
def load_server(database_server: DatabaseServer, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """uvicorn in a subprocess (no scheduler) on its own migrated database, overview cache off so
    every overview reads the database."""
    url = database_server.create_migrated("load")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env.update(LIFELINE_DATABASE_URL=url, LIFELINE_OVERVIEW_CACHE_SECONDS="0")
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "uvicorn did not start within 90 s"
            time.sleep(0.2)
        yield Server(base, log), url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _seed(url: str, accounts: int) -> list[tuple[str, str]]:
    """A small fleet and `accounts` viewers, each with an API token: [(username, raw token)]."""
    engine = create_db_engine(url)
    try:
        with make_session_factory(engine)() as db:
            make_outposts(db, 20)
            made = [_account(db, f"load-{n}") for n in range(accounts)]
            db.commit()
            return made
    finally:
        engine.dispose()


def _account(db: Session, username: str) -> tuple[str, str]:
    user = create_account(db, username, "viewer")
    raw, _ = create_token(db, user, name="load", expires_in_days=None, actor=Actor(name="test"))
    return username, raw


def _signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT)
    client.get("/login")
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": TEST_PASSWORD,
            "csrf_token": client.cookies.get(CSRF_COOKIE, ""),
        },
    )
    assert answer.status_code == 303 and client.cookies.get(SESSION_COOKIE), answer.status_code
    return client


def _hammer(base: str, session_cookie: str, token: str, tally: Tally, stop_at: float) -> None:
    """One client: alternately the overview (signed in) and the API (bearer token) until stop_at."""
    pages = httpx.Client(
        base_url=base, timeout=CLIENT_TIMEOUT, limits=LIMITS, cookies={SESSION_COOKIE: session_cookie}
    )
    api = httpx.Client(
        base_url=base, timeout=CLIENT_TIMEOUT, limits=LIMITS, headers={"Authorization": f"Bearer {token}"}
    )
    n = 0
    try:
        while time.monotonic() < stop_at:
            path = PATHS[n % 2]
            n += 1
            try:
                answer = (pages if path == "/" else api).get(path)
            except httpx.TimeoutException:
                tally.add(f"{path}: no answer within {CLIENT_TIMEOUT:.0f} s")
                continue
            except httpx.HTTPError as exc:
                tally.add(f"{path}: {type(exc).__name__}")
                continue
            tally.add(None if answer.status_code == 200 else f"{path}: {answer.status_code}")
    finally:
        pages.close()
        api.close()


def _run(base: str, identities: list[tuple[str, str]]) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + LOAD_SECONDS
    threads = [
        threading.Thread(target=_hammer, args=(base, cookie, token, tally, stop_at), daemon=True)
        for cookie, token in identities
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + CLIENT_TIMEOUT + 30)
    assert not any(thread.is_alive() for thread in threads), "a client never came back"
    return tally


@pytest.mark.parametrize("sharing", ["one-token", "many-tokens"])
def test_fifty_clients_get_no_error(
    sharing: str, load_server: tuple[Server, str], database_server: DatabaseServer
) -> None:
    server, url = load_server
    accounts = _seed(url, 1 if sharing == "one-token" else CLIENTS)
    sessions = {}
    for username, _ in accounts:
        client = _signed_in(server.base, username)
        sessions[username] = client.cookies[SESSION_COOKIE]
        client.close()
    if sharing == "one-token":
        ((username, token),) = accounts
        identities = [(sessions[username], token)] * CLIENTS
    else:
        identities = [(sessions[username], token) for username, token in accounts]

    tally = _run(server.base, identities)

    total = tally.ok + sum(tally.errors.values())
    print(
        f"\n{database_server.dialect} {sharing}: {CLIENTS} clients, {LOAD_SECONDS} s: "
        f"{total} requests, {tally.ok} answered 200, errors {dict(tally.errors)}"
    )
    log = server.log.read_text()
    assert tally.errors == {}, f"{sum(tally.errors.values())} errors of {total}: {dict(tally.errors)}"
    assert tally.ok > CLIENTS, "the load ran (else this proves nothing)"
    assert "database is locked" not in log and "Traceback" not in log, log[-3000:]
