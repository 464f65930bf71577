"""The settings credential tests run with: a data key, a short signing wait, and AWS on moto.

Not a registered fixture module: only the credential test folders install it, from their conftest.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(name="settings_overrides")
def credential_settings_overrides(data_key: str, aws_endpoint: str) -> dict[str, Any]:
    # moto answers EC2 (no control-plane ENIs there), so nothing reaches real AWS.
    return {"data_key": data_key, "credential_signing_timeout_seconds": 5, "aws_endpoint_url": aws_endpoint}
