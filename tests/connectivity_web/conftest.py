"""Fixtures for the connectivity pages and API: a fixed "now" near the real clock, and both
renderings (full page and HTMX partial) of one URL."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture
def now() -> dt.datetime:
    """The current minute: pages compute windows from the real clock."""
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture(params=["full", "partial"])
def rendering(request: pytest.FixtureRequest) -> dict[str, str]:
    """Request headers for the full page, or for the HTMX fragment of the same URL."""
    return {} if request.param == "full" else {"HX-Request": "true"}
