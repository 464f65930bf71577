"""Accounts fixtures: a controllable clock for sessions, back-off and token expiry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    """The app's clock, frozen at 2026-11-30 12:00 UTC until a test moves it."""
    fixed = Clock()
    app.state.clock = fixed
    return fixed
