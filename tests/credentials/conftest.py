"""Credential fixtures: settings with a data key, and the vault built from it."""

from __future__ import annotations

import pytest

from app.integrations.vault import Vault, decode_data_key, generate_data_key
from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def data_key() -> str:
    return generate_data_key()


@pytest.fixture
def vault(data_key: str) -> Vault:
    return Vault(decode_data_key(data_key, source="test"))


@pytest.fixture
def settings(database_url: str, data_key: str) -> Settings:
    return make_settings(database_url, data_key=data_key, credential_signing_timeout_seconds=5)
