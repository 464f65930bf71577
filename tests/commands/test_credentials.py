"""`lifeline credentials list` and `export`: the bundle from the database alone, audited."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory, session_scope
from app.integrations.vault import Vault
from app.models.audit import AuditEvent
from tests.factories import make_active_credential, make_cluster


def test_list_and_export_offline(
    database_server: Any, data_key: str, vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_server.create_migrated("cli")
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        credential_id = make_active_credential(session, make_cluster(session), vault).id
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    monkeypatch.setenv("LIFELINE_DATA_KEY", data_key)
    runner = CliRunner()
    listed = runner.invoke(cli, ["credentials", "list"])
    assert listed.exit_code == 0, listed.output
    assert "lifeline:alice" in listed.output and "active" in listed.output
    target = tmp_path / "bundle.zip"
    exported = runner.invoke(cli, ["credentials", "export", str(credential_id), "-o", str(target)])
    assert exported.exit_code == 0, exported.output
    assert target.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
        assert any(name.endswith("/kubeconfig") for name in archive.namelist())
    again = runner.invoke(cli, ["credentials", "export", str(credential_id), "-o", str(target)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    monkeypatch.delenv("LIFELINE_DATA_KEY")
    keyless = runner.invoke(cli, ["credentials", "export", str(credential_id), "-o", str(tmp_path / "x.zip")])
    assert keyless.exit_code == 1 and "no data key configured" in keyless.output
    with session_scope(factory) as session:
        actors = list(
            session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "credential.download"))
        )
    assert len(actors) == 1 and actors[0].startswith("cli:")
    engine.dispose()
