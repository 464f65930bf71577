"""The `lifeline` entry point: the simulator and the demo come from extras, imported only when invoked."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


@pytest.mark.parametrize(
    ("command", "missing", "extra"),
    [
        (["demo", "--port", "8765"], "moto", "demo"),
        (["demo", "start"], "OpenSSL", "demo"),
        (["simulate", "cluster", "--manifests", "dump.yaml"], "OpenSSL", "simulator"),
        (["simulate", "cluster", "--manifests", "dump.yaml"], "lifeline_simulator.cli", "simulator"),
    ],
)
def test_a_missing_extra_is_named(
    monkeypatch: pytest.MonkeyPatch, command: list[str], missing: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # what `import` sees when the package is absent
    result = runner.invoke(cli, command)
    assert result.exit_code == 2
    assert f"lifeline {command[0]} needs the '{extra}' extra" in result.stderr
    assert f"pip install 'outpost-lifeline[{extra}]'" in result.stderr
    assert f"pip install -e '.[{extra}]'" in result.stderr


def test_the_production_commands_import_neither_extra() -> None:
    """`lifeline serve` and friends load without the simulator, the demo, moto or pyOpenSSL."""
    code = (
        "import sys\n"
        "for name in ('OpenSSL', 'moto', 'lifeline_simulator', 'lifeline_demo'):\n"
        "    sys.modules[name] = None\n"
        "from typer.testing import CliRunner\n"
        "from app.cli import cli\n"
        "import app.main\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'demo' in result.output and 'simulate' in result.output\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_optional_groups_keep_their_options() -> None:
    result = runner.invoke(cli, ["simulate", "cluster", "--help"])
    assert result.exit_code == 0
    assert "--manifests" in result.stdout and "--write-kubeconfig" in result.stdout
    result = runner.invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.stdout and "start" in result.stdout
