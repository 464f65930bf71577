"""Drill page tests run with AWS on moto (IAM tokens for the simulator) and a data key."""

from __future__ import annotations

from typing import Any

import pytest

BROWSER_VANTAGE = "drill-browser"


@pytest.fixture
def settings_overrides(data_key: str, aws_endpoint: str) -> dict[str, Any]:
    return {
        "data_key": data_key,
        "aws_endpoint_url": aws_endpoint,
        "vantage": BROWSER_VANTAGE,
        "probe_timeout_seconds": 3,
        "credential_signing_timeout_seconds": 5,
    }
