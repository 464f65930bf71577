"""Counting what ran: calls of a function a test patches in place (how many times a read ran), and
the SQL statements sent on a connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
