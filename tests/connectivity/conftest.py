"""Fixtures for connectivity tests: settings pointed at moto, and a fixed clock on a minute boundary."""

from __future__ import annotations

import datetime as dt

import pytest

from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def now() -> dt.datetime:
    """A fixed "now", 30 s into a minute, near real time (moto does not care, CloudWatch would)."""
    current = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return current + dt.timedelta(seconds=30)


@pytest.fixture
def poll_settings(database_url: str, aws_endpoint: str) -> Settings:
    # moto's cost grows with queries x periods: keep the trailing window at its minimum.
    return make_settings(
        database_url,
        aws_endpoint_url=aws_endpoint,
        poll_trailing_window_minutes=5,
        poll_initial_backfill_hours=0,
        aws_max_attempts=2,
        aws_read_timeout_seconds=120,
    )
