"""Issue 12: there was no key rotation (a new key made every sealed key unusable); `credentials export`
must be audited `via: cli`."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations.vault import Vault, generate_data_key
from app.models import Credential
from app.models.audit import AuditEvent
from tests.factories import make_active_credential, make_cluster


def _key_file(path: Path, key: str) -> Path:
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def test_rotation_reseals_keys_issued_before_for_downloads_after(
    database_server: Any, data_key: str, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_server.create_migrated("rotate")
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        credential_id = make_active_credential(session, make_cluster(session), vault).id
        before = session.get(Credential, credential_id).encrypted_key  # type: ignore[union-attr]
    old_file = _key_file(tmp_path / "old.key", data_key)
    new_key = generate_data_key()
    new_file = _key_file(tmp_path / "new.key", new_key)
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    monkeypatch.setenv("LIFELINE_DATA_KEY_FILE", str(old_file))
    runner = CliRunner()
    rotated = runner.invoke(cli, ["credentials", "rotate-data-key", "--new-key-file", str(new_file)])
    assert rotated.exit_code == 0, rotated.output
    assert "re-sealed 1 private key(s)" in rotated.output
    # The old key no longer opens what is stored; the new one does (a download after the rotation).
    monkeypatch.setenv("LIFELINE_DATA_KEY_FILE", str(new_file))
    target = tmp_path / "bundle.zip"
    exported = runner.invoke(cli, ["credentials", "export", str(credential_id), "-o", str(target)])
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
        assert any(name.endswith("/kubeconfig") for name in archive.namelist())
    monkeypatch.setenv("LIFELINE_DATA_KEY_FILE", str(old_file))
    stale = runner.invoke(cli, ["credentials", "export", str(credential_id), "-o", str(tmp_path / "y.zip")])
    assert stale.exit_code == 1
    with session_scope(factory) as session:
        after = session.get(Credential, credential_id).encrypted_key  # type: ignore[union-attr]
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "data_key.rotate")).one()
        downloads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "credential.download")
        ).all()
    assert after != before and data_key not in str(audit.details) and new_key not in str(audit.details)
    assert audit.details["credentials"] == 1 and audit.details["via"] == "cli"
    assert [d.details["via"] for d in downloads if d.outcome == "success"] == ["cli"]
    engine.dispose()


def test_rotation_is_all_or_nothing(
    database_server: Any, data_key: str, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_server.create_migrated("rotate2")
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        cluster = make_cluster(session)
        good = make_active_credential(session, cluster, vault).id
        other = Vault(bytes(32))
        bad = make_active_credential(session, make_cluster(session, "edge-2"), other).id
        before = session.get(Credential, good).encrypted_key  # type: ignore[union-attr]
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    monkeypatch.setenv("LIFELINE_DATA_KEY_FILE", str(_key_file(tmp_path / "old.key", data_key)))
    new_file = _key_file(tmp_path / "new.key", generate_data_key())
    result = CliRunner().invoke(cli, ["credentials", "rotate-data-key", "--new-key-file", str(new_file)])
    assert result.exit_code == 1
    assert f"credential #{bad} does not open" in result.output and "nothing was changed" in result.output
    with session_scope(factory) as session:
        assert session.get(Credential, good).encrypted_key == before  # type: ignore[union-attr]
    engine.dispose()


def test_rotation_reseals_the_id_tokens_kept_for_sign_out(
    database_server: Any, data_key: str, vault: Vault, session: Any
) -> None:
    """An SSO session's ID token (the IdP sign-out hint) opens under the new key after a rotation;
    one that no longer opens is dropped instead of stopping the rotation."""
    from app.integrations.vault import decode_data_key
    from app.models import WebSession
    from app.services.accounts.sso import open_id_token, seal_id_token
    from app.services.audit import SYSTEM
    from app.services.rotation import rotate_data_key
    from tests.conftest import create_account

    user = create_account(session, "sso-bob", "viewer")
    sessions = []
    for token_hash, sealer in (("a" * 64, vault), ("b" * 64, Vault(bytes(32)))):
        row = WebSession(user_id=user.id, token_hash=token_hash, expires_at=dt.datetime.now(dt.UTC))
        row.id_token_sealed = seal_id_token(sealer, "eyJ.header.sig", session_token_hash=token_hash)
        session.add(row)
        sessions.append(row)
    session.flush()
    new = Vault(decode_data_key(generate_data_key(), source="test"))
    rotate_data_key(session, vault, new, SYSTEM)
    kept, dropped = sessions
    assert open_id_token(new, kept.id_token_sealed, session_token_hash=kept.token_hash) == "eyJ.header.sig"
    assert open_id_token(vault, kept.id_token_sealed, session_token_hash=kept.token_hash) is None
    assert dropped.id_token_sealed is None
