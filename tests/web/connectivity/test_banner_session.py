"""The page-wide AWS banner reads through the request's own session: one session per page, not two."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_a_page_opens_one_session_for_itself_and_its_banner(app: FastAPI, client: TestClient) -> None:
    factory = app.state.session_factory
    opened: list[Any] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        session = factory(*args, **kwargs)
        opened.append(session)
        return session

    counting.kw = factory.kw  # type: ignore[attr-defined]
    app.state.session_factory = counting
    try:
        response = client.get("/fleet")
    finally:
        app.state.session_factory = factory
    assert response.status_code == 200
    # sign-in bookkeeping may write in a short session of its own; the page and banner share one
    page_sessions = [s for s in opened if s is not None]
    assert len(page_sessions) <= 2, f"{len(page_sessions)} sessions for one page"
