"""Issue 12, finding 5: 40 parallel anonymous sign-ins took the server from 164 MB to 2 GB (64 MiB
per Argon2 check, each holding a pooled connection) and gave 500s. The cap bounds it: at most
LIFELINE_PASSWORD_HASH_CONCURRENCY checks at once, 429 with Retry-After beyond."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.services.accounts import hashing
from tests.conftest import LiveServer
from tests.web.accounts.test_throttle import _csrf, _parallel, _post_login, slow_hashes

__all__ = ["slow_hashes"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"password_hash_concurrency": 2, "login_free_attempts": 100}


def test_forty_parallel_sign_ins_hash_at_most_the_cap(
    live_server: LiveServer, slow_hashes: list[int]
) -> None:
    base = live_server.url
    with httpx.Client(timeout=60) as http:
        token = _csrf(http, base)
        cookies = dict(http.cookies)

    def sign_in(index: int) -> httpx.Response:
        with httpx.Client(timeout=60, cookies=cookies) as one:
            return _post_login(one, base, token, f"nobody{index}", "wrong password!")

    responses = _parallel(40, sign_in)
    codes = [r.status_code for r in responses]
    assert set(codes) <= {401, 429}, codes
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    # 64 MiB a check: the cap, not the number of callers, bounds the memory.
    assert 1 <= hashing.gate().peak <= 2
    assert hashing.gate().active == 0
