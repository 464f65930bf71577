"""What every signed-in request pays, whatever the page (issue 20's per-request floor): thread-pool
hops and round trips to the database. Each one counts at 16 clients, and on PostgreSQL a round
trip is a network wait."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_outpost
from tests.support.counting import count_calls, statements_on


def test_a_signed_in_page_takes_three_thread_pool_hops(
    client_as: Any, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role check, the page and the transaction's end, each a hop (they do I/O). Starting the
    request's Session does none, so it takes none: as a plain generator it took two, one to start
    and one to end."""
    outpost = make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    viewer: TestClient = client_as("viewer")
    path = f"/outposts/{outpost.outpost_id}"
    assert viewer.get(path).status_code == 200
    hops = count_calls(monkeypatch, anyio.to_thread, "run_sync")
    assert viewer.get(path).status_code == 200
    assert len(hops) == 3


def test_an_api_call_resolves_its_token_and_owner_in_one_statement(
    api_client_as: Any, session: Session
) -> None:
    make_outpost(session, name="Plant 7 Reno", state="CONNECTED")
    session.commit()
    api: TestClient = api_client_as("viewer")
    assert api.get("/api/v1/outposts").status_code == 200
    with statements_on(session.get_bind()) as statements:
        assert api.get("/api/v1/outposts").status_code == 200
    token_reads = [s for s in statements if "FROM api_tokens" in s]
    assert len(token_reads) == 1 and "JOIN users" in token_reads[0], token_reads
    # No lazy load of the owner after it.
    assert not [s for s in statements if "FROM users" in s], statements
