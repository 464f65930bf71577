"""AES-256-GCM sealing of private keys (app.integrations.vault) and the data-key settings."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.integrations import vault


def test_seal_and_open_round_trip_bound_to_the_row() -> None:
    box = vault.Vault(vault.decode_data_key(vault.generate_data_key(), source="test"))
    sealed = box.seal(b"-----BEGIN PRIVATE KEY-----secret", context="credential:7")
    assert sealed.startswith(f"lv1:{box.key_id}:")
    assert b"secret" not in base64.b64decode(sealed.split(":", 2)[2])
    assert box.open(sealed, context="credential:7") == b"-----BEGIN PRIVATE KEY-----secret"
    with pytest.raises(vault.VaultError, match="bound to another row"):
        box.open(sealed, context="credential:8")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(vault.VaultError, match="failed authentication"):
        box.open(tampered, context="credential:7")
    other = vault.Vault(vault.decode_data_key(vault.generate_data_key(), source="test"))
    with pytest.raises(vault.VaultError, match="restore the original LIFELINE_DATA_KEY"):
        other.open(sealed, context="credential:7")
    assert "key=" not in repr(box) or "b'" not in repr(box)


def test_key_sources_and_errors(tmp_path: Path) -> None:
    key = vault.generate_data_key()
    assert len(vault.load_data_key(key, None)) == 32
    key_file = tmp_path / "data.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    assert vault.load_data_key(None, key_file) == base64.b64decode(key)
    with pytest.raises(vault.DataKeyError, match="lifeline credentials gen-data-key"):
        vault.load_data_key(None, None)
    with pytest.raises(vault.DataKeyError, match="16 bytes, 32 are required"):
        vault.load_data_key(base64.b64encode(b"x" * 16).decode(), None)
    with pytest.raises(vault.DataKeyError, match="not valid base64"):
        vault.load_data_key("not base64!", None)
    with pytest.raises(vault.DataKeyError, match="cannot read"):
        vault.load_data_key(None, tmp_path / "missing.key")


def test_cli_generates_a_key_file_with_private_mode(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "data.key"
    result = runner.invoke(cli, ["credentials", "gen-data-key", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_mode & 0o777 == 0o600
    assert len(vault.load_data_key(None, target)) == 32
    again = runner.invoke(cli, ["credentials", "gen-data-key", "-o", str(target)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    printed = runner.invoke(cli, ["credentials", "gen-data-key"])
    assert len(base64.b64decode(printed.output.strip())) == 32


def test_key_file_permissions_are_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12: a mode-0644 data key file was accepted silently."""
    key_file = tmp_path / "data.key"
    key_file.write_text(vault.generate_data_key())
    key_file.chmod(0o644)
    refused = r"readable or writable by every user \(mode 0644\).*chmod 600"
    with pytest.raises(vault.DataKeyError, match=refused):
        vault.load_data_key(None, key_file)
    key_file.chmod(0o640)
    with caplog.at_level("WARNING"):
        assert len(vault.load_data_key(None, key_file)) == 32
    assert "group-accessible" in caplog.text
