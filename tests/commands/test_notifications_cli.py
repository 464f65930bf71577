"""`lifeline notifications add-rule` against a committed database: the drill setting is taken and
a wrong value is refused with what is allowed."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory
from app.integrations.vault import generate_data_key
from app.models import NotificationRule

runner = CliRunner()


def test_add_rule_takes_the_drill_setting(cli_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_DATA_KEY", generate_data_key())
    name = f"hook-{uuid.uuid4().hex[:8]}"
    added = runner.invoke(
        cli, ["notifications", "add-channel", name, "--kind", "webhook", "--url", "http://127.0.0.1:9/hook"]
    )
    assert added.exit_code == 0, added.output
    channel_id = added.stdout.split()[1]
    rule = runner.invoke(
        cli, ["notifications", "add-rule", f"{name}-rule", "--channel", channel_id, "--during-drill", "quiet"]
    )
    assert rule.exit_code == 0, rule.output
    refused = runner.invoke(
        cli, ["notifications", "add-rule", f"{name}-bad", "--channel", channel_id, "--during-drill", "loud"]
    )
    assert refused.exit_code != 0 and "during_drill" in refused.output + refused.stderr
    engine = create_db_engine(cli_db)
    try:
        with make_session_factory(engine)() as session:
            found = session.scalars(
                select(NotificationRule.during_drill).where(NotificationRule.name.startswith(name))
            ).all()
    finally:
        engine.dispose()
    assert found == ["quiet"]
