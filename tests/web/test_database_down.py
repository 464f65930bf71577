"""PostgreSQL taken away and given back while serving (issue 11): /healthz and pages answer 503 with
the reason, then 200 again without a restart. A TCP proxy on loopback stands between Lifeline and
127.0.0.1:5432 and is stopped and started."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app.main import create_app
from app.web.security import SESSION_COOKIE
from tests.conftest import DatabaseServer, make_settings
from tests.support.tcp_proxy import TcpProxy


def test_database_away_gives_503_with_the_reason_then_recovers(database_server: DatabaseServer) -> None:
    if database_server.dialect != "postgresql":
        pytest.skip("a database server to take away is PostgreSQL's case")
    url = make_url(database_server.create_migrated("away"))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    app = create_app(make_settings(url.set(port=proxy.port).render_as_string(hide_password=False)))
    with TestClient(app, base_url="http://testserver") as client:
        assert client.get("/healthz").status_code == 200
        proxy.stop()
        try:
            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.text.startswith("database unreachable: ")
            assert health.headers["retry-after"]
            # A page (a session cookie makes it read the database) and the API.
            client.cookies.set(SESSION_COOKIE, "x" * 43)
            page = client.get("/", follow_redirects=False)
            assert page.status_code == 503
            assert "the database is unreachable" in page.text and "Reason:" in page.text
            api = client.get("/api/v1/me", headers={"Authorization": "Bearer llt_" + "x" * 43})
            assert api.status_code == 503
            assert api.json()["detail"].startswith("The database is unreachable")
            # The sign-in page must not offer a form that cannot work.
            client.cookies.clear()
            login = client.get("/login")
            assert login.status_code == 503
            assert "the database is unreachable" in login.text and "Reason:" in login.text
            assert 'name="password"' not in login.text
        finally:
            proxy.start()
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "no recovery within 10 s"
            time.sleep(0.2)
        client.cookies.clear()
        assert (
            client.get("/api/v1/me", headers={"Authorization": "Bearer llt_" + "x" * 43}).status_code == 401
        )
        login = client.get("/login")
        assert login.status_code == 200 and 'name="password"' in login.text
    proxy.stop()
