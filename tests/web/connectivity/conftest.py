"""Both renderings (full page and HTMX partial) of one connectivity URL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["full", "partial"])
def rendering(request: pytest.FixtureRequest) -> dict[str, str]:
    """Request headers for the full page, or for the HTMX fragment of the same URL."""
    return {} if request.param == "full" else {"HX-Request": "true"}
