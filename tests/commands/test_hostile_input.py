"""Issue 12, finding 10: deep nesting crashed `fleet validate` with a RecursionError traceback and made
`check` exit 1 (reserved for findings); names with terminal escape sequences were printed raw."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.commands.common import terminal_safe
from tests.factories import LOCAL_REGISTRY, failing_cluster

runner = CliRunner()
DEEP = "[" * 500 + "]" * 500 + "\n"


def test_fleet_validate_refuses_deep_nesting_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("outposts: " + DEEP)
    result = runner.invoke(cli, ["fleet", "validate", str(path)])
    assert result.exit_code == 1  # the documented "refused" status, not a crash
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "nested deeper than 64 levels at line 1" in result.output
    assert "Traceback" not in result.output


def test_check_exits_with_the_input_error_code_on_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP)
    result = runner.invoke(cli, ["check", "--manifests", str(path), "--local-registry", LOCAL_REGISTRY])
    assert result.exit_code == 2, result.output
    assert "nested deeper than 64 levels" in result.output


def test_check_output_has_no_escape_sequences(tmp_path: Path) -> None:
    objects = failing_cluster("system-masters-binding")
    for obj in objects:
        if obj.get("kind") == "CertificateSigningRequest":
            obj["metadata"]["name"] = "evil\x1b]0;owned\x07\x1b[2J"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    result = runner.invoke(cli, ["check", "--manifests", str(path), "--local-registry", LOCAL_REGISTRY])
    assert "evil\\x1b]0;owned\\x07" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert terminal_safe("a\x1b[31mb\tc\n") == "a\\x1b[31mb\tc\n"
