"""Credential tests run with a data key and AWS on moto."""

from tests.support.credentials import credential_settings_overrides

__all__ = ["credential_settings_overrides"]
