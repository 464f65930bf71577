"""Job fixtures: the pollers' "now" is 30 s into the minute."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture
def now(now: dt.datetime) -> dt.datetime:
    """Near real time, 30 s into the minute (moto does not care, CloudWatch would)."""
    return now + dt.timedelta(seconds=30)
