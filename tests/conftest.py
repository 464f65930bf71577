"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when LIFELINE_TEST_DATABASE_URL is
set), a transaction rolled back after each test, the app and an authenticated client, moto's server,
a live server for browser tests, and Playwright on Debian's chromium.

Under CI=true a missing PostgreSQL or chromium fails the test; elsewhere browser tests skip.
Each feature's fixtures live in tests/fixtures/<feature>.py, registered below; builders in tests/factories.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.db import create_db_engine, make_session_factory
from app.main import create_app
from app.services.audit import Actor
from app.settings import Settings
from tests.support.htmx import Rendering

pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.connectivity",
    "tests.fixtures.credentials",
    "tests.fixtures.drills",
    "tests.fixtures.fleet",
    "tests.fixtures.kube",
    "tests.fixtures.notifications",
    "tests.fixtures.probes",
    "tests.fixtures.readiness",
    "tests.fixtures.sso",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"


# ---------------------------------------------------------------- environment isolation


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LIFELINE_* or real AWS settings leak into a test; boto3 gets fake credentials."""
    for key in list(os.environ):
        if key.startswith("LIFELINE_") and key != "LIFELINE_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------- databases


class DatabaseServer:
    """Creates throw-away databases: SQLite files, or PostgreSQL databases on the test server."""

    def __init__(self, base_url: str | None, tmp_dir: Path) -> None:
        self.base_url = base_url
        self.tmp_dir = tmp_dir
        self.created: list[str] = []

    @property
    def dialect(self) -> str:
        return "postgresql" if self.base_url else "sqlite"

    def create(self, label: str = "db") -> str:
        """Return the URL of a new, empty database."""
        if not self.base_url:
            return f"sqlite:///{self.tmp_dir / f'{label}-{uuid.uuid4().hex[:8]}.db'}"
        name = f"lifeline_t_{label}_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        self.created.append(name)
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def create_migrated(self, label: str = "db") -> str:
        url = self.create(label)
        migrate.upgrade(url)
        return url

    def drop_all(self) -> None:
        if not self.base_url or not self.created:
            return
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for name in self.created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    server = DatabaseServer(os.environ.get("LIFELINE_TEST_DATABASE_URL"), tmp_path_factory.mktemp("db"))
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def database_url(database_server: DatabaseServer) -> str:
    """A database migrated once to head by Alembic, shared by the session's tests."""
    return database_server.create_migrated("main")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_db_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection in an outer transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits become savepoints inside the test's outer transaction."""
    return make_session_factory(connection, join_transaction_mode="create_savepoint")


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    db = session_factory()
    try:
        yield db
    finally:
        db.close()


# ---------------------------------------------------------------- application


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: never read a .env file."""
    return Settings(_env_file=None, database_url=database_url, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings beyond the defaults for the app and the live server; a folder's conftest overrides it."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest.fixture
def now() -> dt.datetime:
    """The current minute: pages compute windows from the real clock."""
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[FastAPI]:
    application = create_app(settings)
    application.state.session_factory = session_factory
    yield application
    application.state.engine.dispose()


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with tiny parameters in tests: same code path, milliseconds instead of ~100 ms a hash."""
    from argon2 import PasswordHasher

    from app.services.accounts import users

    monkeypatch.setattr(
        users, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(users, "_dummy_hash", None)


TEST_PASSWORD = "correct horse battery staple"


def create_account(session: Session, username: str, role: str, password: str = TEST_PASSWORD) -> Any:
    """An enabled account made through the accounts service (committed to the test's transaction)."""
    from app.services.accounts.users import create_user

    user = create_user(session, username=username, password=password, role=role, actor=Actor(name="test"))
    session.commit()
    return user


def sign_in(test_client: TestClient, username: str, password: str = TEST_PASSWORD) -> TestClient:
    """Sign in through the real /login form; afterwards every request sends the CSRF header."""
    from app.web.security import CSRF_COOKIE, SESSION_COOKIE, csrf_token_for_session

    test_client.get("/login")
    response = test_client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": test_client.cookies.get(CSRF_COOKIE, ""),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, f"sign-in as {username} failed: {response.status_code}"
    raw = test_client.cookies.get(SESSION_COOKIE)
    assert raw, "no session cookie after sign-in"
    test_client.headers["X-CSRF-Token"] = csrf_token_for_session(raw)
    return test_client


@pytest.fixture(params=[False, True], ids=["full", "partial"])
def htmx(request: pytest.FixtureRequest) -> Rendering:
    """One URL, two renderings: every page test runs once for the full page, once for its partial."""
    return Rendering(partial=request.param)


@pytest.fixture
def anon_client(app: FastAPI) -> Iterator[TestClient]:
    """A client that has not signed in."""
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def client_as(app: FastAPI, session: Session) -> Iterator[Any]:
    """Factory: `client_as("responder")` is a new client signed in as a fresh account with that role."""
    clients: list[TestClient] = []

    def make(role: str, username: str | None = None) -> TestClient:
        name = username or f"{role}-{len(clients) + 1}"
        create_account(session, name, role)
        test_client = TestClient(app, base_url="http://testserver")
        clients.append(test_client)
        return sign_in(test_client, name)

    yield make
    for test_client in clients:
        test_client.close()


@pytest.fixture
def client(client_as: Any) -> TestClient:
    """A client signed in as the admin `admin` through /login; sends the CSRF header by itself."""
    test_client: TestClient = client_as("admin", "admin")
    return test_client


@pytest.fixture
def api_client_as(app: FastAPI, session: Session) -> Iterator[Any]:
    """Factory: `api_client_as("viewer")` sends a fresh account's bearer token (and no cookies)."""
    from app.services.accounts.tokens import create_token

    clients: list[TestClient] = []

    def make(role: str, username: str | None = None) -> TestClient:
        user = create_account(session, username or f"api-{role}-{len(clients) + 1}", role)
        raw, _ = create_token(session, user, name="tests", expires_in_days=None, actor=Actor(name="test"))
        session.commit()
        test_client = TestClient(
            app, base_url="http://testserver", headers={"Authorization": f"Bearer {raw}"}
        )
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.close()


# ---------------------------------------------------------------- AWS (moto's server on loopback)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's HTTP server on 127.0.0.1; returns its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_endpoint(moto_server: str) -> Iterator[str]:
    """moto's endpoint, emptied before the test."""
    import httpx

    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    yield moto_server


# ---------------------------------------------------------------- live server and browser


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    settings: Settings
    session_factory: sessionmaker[Session]


def _serve_in_thread(app: FastAPI, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    return server, thread


@pytest.fixture
def live_server(database_server: DatabaseServer, settings_overrides: dict[str, Any]) -> Iterator[LiveServer]:
    """The dashboard on a real port with its own migrated database (data is committed)."""
    url = database_server.create_migrated("live")
    settings = make_settings(url, **settings_overrides)
    application = create_app(settings)
    port = free_port()
    server, thread = _serve_in_thread(application, port)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", application, settings, application.state.session_factory)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ],
        )
        yield instance
        instance.close()


LIVE_ADMIN = "admin"


@pytest.fixture
def anon_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A browser page on the live server, not signed in (the admin `admin` exists)."""
    from app.db import session_scope

    with session_scope(live_server.session_factory) as db:
        create_account(db, LIVE_ADMIN, "admin")
    context = browser.new_context(base_url=live_server.url)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def page(anon_page: Any) -> Any:
    """A browser page on the live server, signed in as the admin `admin` through the sign-in form."""
    # Land on /account, not the overview: rendering (and caching) a page before the test seeds its
    # data would change what the test sees.
    anon_page.goto("/login?next=/account")
    anon_page.fill("input[name=username]", LIVE_ADMIN)
    anon_page.fill("input[name=password]", TEST_PASSWORD)
    anon_page.click("button[type=submit]")
    anon_page.wait_for_url("**/account")
    return anon_page


@pytest.fixture
def kubectl() -> str:
    path = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(path).exists():
        message = "kubectl is missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


# ---------------------------------------------------------------- Kubernetes simulator
# `simulated_cluster(**kwargs)` starts an `lifeline_simulator.SimulatedCluster` (see its module docstring
# for every argument) on a free loopback port and stops it after the test.


@pytest.fixture
def simulated_cluster() -> Iterator[Any]:
    """Factory: `sim = simulated_cluster(name="plant7-local", manifests=[...])`, already started."""
    from lifeline_simulator import SimulatedCluster

    started: list[SimulatedCluster] = []

    def factory(**kwargs: Any) -> SimulatedCluster:
        sim = SimulatedCluster(**kwargs).start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()
