"""Issue 12, findings 3, 4, 5 and 8: back-off that holds under concurrency and cannot be turned
against users; proxy headers believed only from configured proxies; password hashing capped.

On the landed version 30 parallel guesses were all evaluated (3 allowed), rotating X-Forwarded-For
escaped the per-address counter, nine failures from one address locked the account out for everyone,
40 parallel sign-ins took 2 GB and gave 500s, and the password-change form had no back-off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import Headers

from app.db import session_scope
from app.models.audit import AuditEvent
from app.services.accounts import users as accounts
from app.web.security import CSRF_COOKIE, client_address, parse_proxies
from tests.conftest import TEST_PASSWORD, LiveServer, create_account
from tests.fixtures.accounts import Clock


def _csrf(http: httpx.Client | TestClient, base: str = "") -> str:
    http.get(f"{base}/login")
    return http.cookies.get(CSRF_COOKIE, "")


def _post_login(http: Any, base: str, token: str, username: str, password: str, **headers: str) -> Any:
    data = {"username": username, "password": password, "csrf_token": token}
    return http.post(f"{base}/login", data=data, headers=headers, follow_redirects=False)


@pytest.fixture
def slow_hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every password check lasts a little (so parallel requests overlap); returns the calls."""
    calls: list[int] = []
    real: Callable[[str | None, str], bool] = accounts._verify

    def verify(stored: str | None, password: str) -> bool:
        calls.append(1)
        time.sleep(0.05)
        return real(stored, password)

    monkeypatch.setattr(accounts, "_verify", verify)
    return calls


def _parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def test_thirty_parallel_guesses_evaluate_at_most_the_free_attempts(
    live_server: LiveServer, slow_hashes: list[int]
) -> None:
    with session_scope(live_server.session_factory) as db:
        create_account(db, "alice", "viewer")
    base = live_server.url
    with httpx.Client(timeout=60) as http:
        token = _csrf(http, base)
        cookies = dict(http.cookies)

    def guess(index: int) -> int:
        password = TEST_PASSWORD if index == 29 else f"wrong guess {index}"
        with httpx.Client(timeout=60, cookies=cookies) as one:
            return int(_post_login(one, base, token, "alice", password).status_code)

    codes = _parallel(30, guess)
    evaluated = [c for c in codes if c != 429]
    assert len(evaluated) <= 3, codes
    assert len(slow_hashes) <= 3
    assert 500 not in codes
    with live_server.session_factory() as db:
        outcomes = db.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "auth.sign_in")).all()
    assert len([o for o in outcomes if o != "denied"]) <= 3
    assert len([o for o in outcomes if o == "denied"]) >= 27


def test_an_account_is_not_lockable_from_another_address(
    app: FastAPI, session: Session, clock: Clock
) -> None:
    create_account(session, "alice", "viewer")
    session.commit()
    with (
        TestClient(app, client=("127.0.0.66", 40000)) as attacker,
        TestClient(app, client=("127.0.0.10", 40000)) as owner,
    ):
        token = _csrf(attacker)
        for _ in range(12):
            _post_login(attacker, "", token, "alice", "wrong password!")
        assert _post_login(attacker, "", token, "alice", TEST_PASSWORD).status_code == 429
        owner_token = _csrf(owner)
        assert _post_login(owner, "", owner_token, "alice", TEST_PASSWORD).status_code == 303


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    anon_client: TestClient, session: Session, clock: Clock
) -> None:
    create_account(session, "alice", "viewer")
    token = _csrf(anon_client)
    for index in range(3):
        _post_login(anon_client, "", token, "alice", "wrong!", **{"X-Forwarded-For": f"127.0.0.{index + 2}"})
    rotated = _post_login(anon_client, "", token, "alice", TEST_PASSWORD, **{"X-Forwarded-For": "127.0.0.99"})
    assert rotated.status_code == 429
    addresses = set(
        session.scalars(select(AuditEvent.client_address).where(AuditEvent.action == "auth.sign_in")).all()
    )
    assert addresses == {"testclient"}  # the real peer, never the forged header


def test_client_address_from_trusted_proxies_only() -> None:
    proxies = parse_proxies(["127.0.0.1/32"])
    headers = Headers({"x-forwarded-for": "127.0.0.200, 127.0.0.9"})
    assert client_address("127.0.0.1", headers, proxies) == "127.0.0.9"  # what the proxy appended
    assert client_address("127.0.0.2", headers, proxies) == "127.0.0.2"  # not a proxy: the peer
    assert client_address("127.0.0.1", headers, ()) == "127.0.0.1"  # default: no proxy trusted
    chain = Headers({"x-forwarded-for": "127.0.0.9, 127.0.0.1"})
    assert client_address("127.0.0.1", chain, proxies) == "127.0.0.9"


def test_password_change_has_the_same_back_off(client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer", "vera")
    codes = []
    for _ in range(5):
        response = viewer.post(
            "/account/password",
            data={
                "current_password": "not it at all",
                "new_password": "x" * 14,
                "new_password_confirm": "x" * 14,
            },
        )
        codes.append(response.status_code)
    assert codes[:3] == [422, 422, 422]
    assert codes[3:] == [429, 429]


def test_reauth_has_the_same_back_off(client_as: Any, clock: Clock) -> None:
    viewer = client_as("viewer", "rae")
    codes = [
        viewer.post("/reauth", data={"password": "wrong!!"}, follow_redirects=False).status_code
        for _ in range(4)
    ]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429


def test_password_change_ends_api_tokens_by_default(client_as: Any, session: Session) -> None:
    from app.models.account import ApiToken, User
    from app.services.accounts.tokens import create_token

    viewer = client_as("viewer", "tess")
    user = session.scalars(select(User).where(User.username == "tess")).one()
    create_token(session, user, name="laptop", expires_in_days=30, actor=accounts.Actor(name="tess"))
    session.commit()
    response = viewer.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "y" * 14,
            "new_password_confirm": "y" * 14,
            "password_form": "true",
            "end_tokens": "true",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    session.expire_all()
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert token.revoked_at is not None
    assert re.search("tokens_ended", str(session.scalars(select(AuditEvent.details)).all()))
