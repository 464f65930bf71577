"""`lifeline fleet ...` through typer's CliRunner against a committed database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.conftest import free_port
from tests.fixtures.fleet import MakeCluster

OP_A = "op-0123456789abcdef0"
OP_B = "op-0fedcba9876543210"

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["fleet", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        "list",
        "add-outpost",
        "remove-outpost",
        "add-cluster",
        "remove-cluster",
        "apply",
        "discover",
        "update-outpost",
        "validate",
    ],
)
def test_every_command_has_help(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Usage:" in out


def test_empty_fleet_says_how_to_add_one(cli_db: str) -> None:
    code, out, _ = run("list")
    assert code == 0
    assert "fleet file" in out and "add-outpost" in out and "discover" in out


def test_add_list_remove(cli_db: str) -> None:
    assert (
        run("add-outpost", OP_A, "--name", "Plant 7", "--region", "us-west-2", "--account", "123456789012")[0]
        == 0
    )
    assert run("add-cluster", "plant7-local", "--region", "us-west-2", "--outpost", OP_A)[0] == 0

    code, out, _ = run("list")
    assert code == 0
    assert OP_A in out and "Plant 7" in out and "plant7-local" in out and "manual" in out

    code, out, _ = run("list", "--json")
    data = json.loads(out)
    assert data["outposts"] == [
        {
            "outpost_id": OP_A,
            "name": "Plant 7",
            "region": "us-west-2",
            "account_id": "123456789012",
            "source": "manual",
            "state": "UNKNOWN",
            "clusters": ["plant7-local"],
        }
    ]
    assert data["clusters"][0]["outpost_id"] == OP_A

    assert run("remove-cluster", "plant7-local", "--region", "us-west-2")[0] == 0
    assert run("remove-outpost", OP_A)[0] == 0
    assert json.loads(run("list", "--json")[1]) == {"outposts": [], "clusters": [], "runs": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["add-outpost", "op-123", "--name", "x", "--region", "us-west-2"],
            "outpost_id: 'op-123' is not an Outpost ID",
        ),
        (["add-outpost", OP_A, "--name", " ", "--region", "us-west-2"], "name: must not be empty"),
        (["add-outpost", OP_A, "--name", "x", "--region", "mars-1"], "region: 'mars-1' is not an AWS region"),
        (
            ["add-outpost", OP_A, "--name", "x", "--region", "us-west-2", "--account", "12"],
            "account_id: '12'",
        ),
        (["add-cluster", "c1", "--region", "us-west-2", "--outpost", OP_B], f"no Outpost {OP_B}"),
        (["remove-outpost", OP_B], f"no Outpost {OP_B}"),
        (["remove-cluster", "c9", "--region", "us-west-2"], "no cluster c9 in us-west-2"),
    ],
)
def test_errors_exit_non_zero_with_the_reason(cli_db: str, args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 1
    assert message in err


def test_duplicate_outpost_is_refused(cli_db: str) -> None:
    run("add-outpost", OP_A, "--name", "x", "--region", "us-west-2")
    code, _, err = run("add-outpost", OP_A, "--name", "y", "--region", "us-west-2")
    assert code == 1
    assert f"Outpost {OP_A} already exists (source: manual)" in err


FLEET = f"""\
outposts:
  - id: {OP_A}
    name: Plant 7
    region: us-west-2
clusters:
  - name: plant7-local
    region: us-west-2
    outpost: {OP_A}
"""


def test_apply_dry_run_then_apply(cli_db: str, tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    code, out, _ = run("apply", str(path), "--dry-run")
    assert code == 0
    assert f"add    outpost {OP_A}" in out
    assert "dry run, nothing changed: would be 2 added" in out
    assert json.loads(run("list", "--json")[1])["outposts"] == []

    code, out, _ = run("apply", str(path))
    assert code == 0 and "2 added, 0 updated, 0 removed" in out
    code, out, _ = run("apply", str(path))
    assert code == 0 and "no changes" in out

    # File-managed entries can only be removed through the file.
    code, _, err = run("remove-outpost", OP_A)
    assert code == 1 and "managed by the fleet file" in err and "--force" in err
    assert OP_A in run("list")[1]
    path.write_text("outposts: []\n")
    code, out, _ = run("apply", str(path))
    assert "0 added, 0 updated, 2 removed" in out
    assert json.loads(run("list", "--json")[1]) == {"outposts": [], "clusters": [], "runs": []}


def test_force_removes_file_managed_entries(cli_db: str, tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    run("apply", str(path))
    assert run("remove-cluster", "plant7-local", "--region", "us-west-2", "--force")[0] == 0
    assert run("remove-outpost", OP_A, "--force")[0] == 0
    assert json.loads(run("list", "--json")[1])["outposts"] == []


def test_apply_rejects_a_bad_file_whole(cli_db: str, tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + "  - name: plant8-local\n    region: us-west-2\n    outpost: op-bad\n")
    code, _, err = run("apply", str(path))
    assert code == 1
    assert f"{path} rejected, nothing applied" in err
    assert f"{path}:11: cluster plant8-local: outpost 'op-bad' is not an Outpost ID" in err
    assert json.loads(run("list", "--json")[1])["outposts"] == []


def test_bad_setting_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_DATABASE_URL", "mysql://nope")
    code, _, err = run("list")
    assert code == 2
    assert "LIFELINE_DATABASE_URL" in err


def test_discover_without_regions_says_how_to_configure(cli_db: str) -> None:
    code, _, err = run("discover")
    assert code == 1
    assert "no regions to discover" in err and "LIFELINE_AWS_REGIONS" in err


def test_discover_a_region(
    cli_db: str, aws_endpoint: str, make_eks_cluster: MakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_eks_cluster("plant7-local", "us-west-2", outpost_id=OP_A)
    monkeypatch.setenv("LIFELINE_AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("LIFELINE_AWS_MAX_ATTEMPTS", "1")
    code, out, _ = run("discover", "--region", "us-west-2")
    assert code == 0, out
    assert f"add    outpost {OP_A}" in out and "add    cluster us-west-2/plant7-local" in out
    data = json.loads(run("list", "--json")[1])
    assert data["clusters"][0]["status"] == "ACTIVE" and data["clusters"][0]["source"] == "discovery"

    # An unreachable endpoint: the error is printed and the exit status is non-zero.
    monkeypatch.setenv("LIFELINE_AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, _, err = run("discover", "--region", "us-west-2")
    assert code == 1 and "us-west-2: failed: EndpointConnectionError" in err
    code, out, _ = run("list")
    assert "discovery  us-west-2: error at" in out and "EndpointConnectionError" in out


def test_update_outpost(cli_db: str) -> None:
    run("add-outpost", OP_A, "--name", "x", "--region", "us-west-2")
    code, out, _ = run("update-outpost", OP_A, "--name", "Plant 7", "--account", "123456789012")
    assert code == 0 and f"updated Outpost {OP_A}: Plant 7, account 123456789012" in out
    code, _, err = run("update-outpost", OP_A)
    assert code == 1 and "nothing to change" in err


def test_validate_needs_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFELINE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET + "discovery:\n  regions: [us-west-2]\n")
    code, out, _ = run("validate", str(path))
    assert code == 0 and "valid (1 Outposts, 1 clusters, discovery regions: us-west-2)" in out
    path.write_text("outposts:\n  - id: op-1\n")
    code, _, err = run("validate", str(path))
    assert code == 1
    assert (
        f"{path}:2: Outpost op-1: name is missing" in err
        and f"{path}:2: Outpost op-1: region is missing" in err
    )
