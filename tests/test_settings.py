"""Settings: defaults, and a bad value names the setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.settings import SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite:///./lifeline.db"
    assert settings.poll_interval_seconds == 60
    assert settings.aws_endpoint_url is None
    assert settings.raw_retention_days == 15


def test_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_POLL_INTERVAL_SECONDS", "often")
    with pytest.raises(SettingsError, match="LIFELINE_POLL_INTERVAL_SECONDS"):
        load_settings(_env_file=None)


def test_missing_fleet_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_FLEET_FILE", "/nonexistent/fleet.yaml")
    with pytest.raises(SettingsError, match=r"LIFELINE_FLEET_FILE: .*does not exist"):
        load_settings(_env_file=None)


def test_cli_refuses_to_start_with_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env={"LIFELINE_DATABASE_URL": "mysql://nope", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LIFELINE_DATABASE_URL" in result.stderr
