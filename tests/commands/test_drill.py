"""`lifeline drill start|status|end|report` through typer's CliRunner against a committed database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory
from app.models import AuditEvent, Outpost

OP = "op-0a1b2c3d4e5f60718"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["drill", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["start", "status", "end", "report"])
def test_every_command_has_help(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0 and "Usage:" in out


def test_start_status_end_report_are_audited(cli_db: str) -> None:
    engine = create_db_engine(cli_db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM drills"))
        conn.execute(text("DELETE FROM audit_events WHERE action LIKE 'drill.%'"))
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(Outpost(outpost_id=OP, name="Plant 8", region="us-west-2", state="CONNECTED"))
        session.commit()
    try:
        code, out, err = run("status")
        assert code == 0 and "no drills" in out

        code, out, err = run(
            "start", "--outpost", OP, "--title", "CLI drill", "--duration", "20", "--ticket", "CHG-9"
        )
        assert code == 0, err
        assert "running on op-0a1b2c3d4e5f60718 for 20 min" in out
        drill_id = int(out.split("#", 1)[1].split()[0])
        assert (
            "pending  disconnect" in out
        )  # the first round ran: CloudWatch says connected, within the grace

        code, out, _ = run("status", str(drill_id))
        assert code == 0 and f"#{drill_id} running: CLI drill on Plant 8" in out

        code, out, _ = run("report", str(drill_id), "--format", "json")
        assert code == 0 and json.loads(out)["ticket_ref"] == "CHG-9"

        code, out, _ = run("end", str(drill_id))
        assert (
            code == 0 and f"drill #{drill_id} ended: incomplete" in out and "follow-up: Not verified" in out
        )
        code, out, err = run("end", str(drill_id))
        assert code == 1 and "only a running drill can end" in err

        code, out, _ = run("report", str(drill_id))
        assert code == 0 and out.startswith(f"# Disconnect drill #{drill_id}: CLI drill")

        code, _, err = run("start", "--outpost", "op-ffffffffffffffff0")
        assert code == 1 and "no Outpost" in err
        with factory() as session:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("drill.%")).order_by(AuditEvent.id)
            ).all()
            assert [r.action for r in rows] == [
                "drill.plan",
                "drill.start",
                "drill.report",
                "drill.end",
                "drill.report",
            ]
            assert all(r.actor.startswith("cli:") for r in rows)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM drills"))
        engine.dispose()
