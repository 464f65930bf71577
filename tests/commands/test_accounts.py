"""`lifeline users` and `lifeline tokens` against a real migrated database; all audited as cli:<user>."""

from __future__ import annotations

import getpass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import create_db_engine, make_session_factory, session_scope
from app.main import create_app
from app.models import AuditEvent, User
from tests.conftest import TEST_PASSWORD, DatabaseServer, make_settings

runner = CliRunner()


@pytest.fixture
def cli_db(database_server: DatabaseServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = database_server.create_migrated("cli")
    monkeypatch.setenv("LIFELINE_DATABASE_URL", url)
    return url


def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_users_commands(cli_db: str) -> None:
    code, out, _ = _run(
        "users",
        "create",
        "--username",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    assert code == 0 and out.strip() == "created root (admin)"
    code, _, err = _run(
        "users", "create", "--username", "root", "--password-stdin", stdin=TEST_PASSWORD + "\n"
    )
    assert code == 1 and "already exists" in err
    code, _, err = _run("users", "create", "--username", "weak", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 12 characters" in err
    code, _, err = _run(
        "users", "create", "--username", "x", "--role", "superuser", "--password-stdin", stdin="p\n"
    )
    assert code == 2 and "choose one of viewer, responder, admin" in err
    assert (
        _run("users", "create", "--username", "bob", "--password-stdin", stdin=TEST_PASSWORD + "\n")[0] == 0
    )
    assert _run("users", "set-role", "bob", "responder")[0] == 0
    assert _run("users", "disable", "bob")[0] == 0
    code, out, _ = _run("users", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "STATE", "LAST", "SIGN-IN"]
    assert lines[1].split()[:3] == ["bob", "responder", "disabled"]
    assert lines[2].split()[:3] == ["root", "admin", "active"]
    assert _run("users", "enable", "bob")[0] == 0
    assert _run("users", "reset-password", "bob", "--password-stdin", stdin="another long password\n")[0] == 0
    code, _, err = _run("users", "disable", "nobody")
    assert code == 1 and "no account named 'nobody'" in err
    code, _, err = _run("users", "disable", "root")
    assert code == 1 and "last enabled admin" in err

    engine = create_db_engine(cli_db)
    try:
        with session_scope(make_session_factory(engine)) as db:
            bob = db.scalars(select(User).where(User.username == "bob")).one()
            assert bob.role == "responder" and not bob.disabled
            events = [
                (e.actor, e.action, e.target) for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
            ]
    finally:
        engine.dispose()
    actor = f"cli:{getpass.getuser()}"
    assert events == [
        (actor, "user.create", "user:root"),
        (actor, "user.create", "user:bob"),
        (actor, "user.role_change", "user:bob"),
        (actor, "user.disable", "user:bob"),
        (actor, "user.enable", "user:bob"),
        (actor, "user.password_reset", "user:bob"),
    ]


def test_password_prompt_twice(cli_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([TEST_PASSWORD, TEST_PASSWORD + "!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    code, _, err = _run("users", "create", "--username", "root", "--role", "admin")
    assert code == 2 and "the passwords differ" in err
    answers = iter([TEST_PASSWORD, TEST_PASSWORD])
    assert _run("users", "create", "--username", "root", "--role", "admin")[0] == 0


def test_tokens_commands(cli_db: str) -> None:
    _run(
        "users",
        "create",
        "--username",
        "ci",
        "--role",
        "responder",
        "--password-stdin",
        stdin=TEST_PASSWORD + "\n",
    )
    code, out, err = _run("tokens", "create", "--user", "ci", "--name", "pipeline", "--expires-in", "30")
    assert code == 0
    raw = out.strip()
    assert raw.startswith("llt_") and len(raw) > 40
    assert "not shown again" in err and raw not in err

    app = create_app(make_settings(cli_db))
    with TestClient(app, headers={"Authorization": f"Bearer {raw}"}) as api:
        assert api.get("/api/v1/me").json() == {"username": "ci", "role": "responder", "via_token": True}
        code, out, _ = _run("tokens", "list")
        row = out.splitlines()[1].split()
        assert row[1] == raw[:12] and row[2:6] == ["ci", "pipeline", "active", "20" + row[5][2:]]
        code, _, err = _run("tokens", "revoke", "llt_no_such")
        assert code == 1 and "no token matches" in err
        code, out, _ = _run("tokens", "revoke", raw[:12])
        assert code == 0 and "revoked" in out
        assert api.get("/api/v1/me").status_code == 401
    code, out, _ = _run("tokens", "list", "--user", "ci")
    assert "revoked" in out
    assert _run("tokens", "create", "--user", "ghost")[0] == 1


def test_break_glass_and_totp_reset_from_the_server(cli_db: str) -> None:
    """Recovery when the only admin lost the authenticator while SSO is on (issue 18)."""
    assert (
        _run(
            "users",
            "create",
            "--username",
            "root",
            "--role",
            "admin",
            "--password-stdin",
            stdin=TEST_PASSWORD + "\n",
        )[0]
        == 0
    )
    code, _, err = _run("users", "reset-totp", "root")
    assert code == 1 and "no TOTP" in err
    engine = create_db_engine(cli_db)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username_key == "root")).one()
            user.totp_enabled, user.totp_secret_sealed = True, "sealed"
        code, out, _ = _run("users", "break-glass", "root")
        assert code == 0 and out.strip() == "root is break-glass"
        code, out, _ = _run("users", "reset-totp", "root")
        assert code == 0 and out.strip() == "TOTP of root reset"
        with session_scope(make_session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username_key == "root")).one()
            assert user.break_glass and not user.totp_enabled and user.totp_secret_sealed is None
            actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
            assert actions[-2:] == ["user.break_glass_on", "user.totp_reset"]
            assert (
                session.scalars(select(AuditEvent.actor).order_by(AuditEvent.id.desc()))
                .first()
                .startswith("cli:")
            )
    finally:
        engine.dispose()
