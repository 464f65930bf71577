"""The fleet file: parsing with line numbers, rejection whole, and applying it with precedence."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Cluster, Outpost
from app.services.fleet import inventory
from app.services.fleet.fleet_file import FleetFileError, load_fleet_file, parse_fleet_text

OP_A = "op-0123456789abcdef0"
OP_B = "op-0fedcba9876543210"

VALID = f"""\
outposts:
  - id: {OP_A}
    name: Plant 7, rack A
    region: us-west-2
    account: 000123456789
  - id: {OP_B}
    name: Plant 9
    region: eu-central-1
clusters:
  - name: plant7-local
    region: us-west-2
    outpost: {OP_A}
  - name: plant9-local
    region: eu-central-1
discovery:
  regions: [us-west-2, eu-central-1, us-west-2]
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(FleetFileError) as info:
        parse_fleet_text(textwrap.dedent(text), "fleet.yaml")
    return [str(problem) for problem in info.value.problems]


def test_valid_file_parses_with_lines() -> None:
    fleet = parse_fleet_text(VALID, "fleet.yaml")
    assert [o.outpost_id for o in fleet.outposts] == [OP_A, OP_B]
    first = fleet.outposts[0]
    assert (first.name, first.region, first.line) == ("Plant 7, rack A", "us-west-2", 2)
    # Written without quotes, YAML would read 000123456789 as an octal number; we keep the digits.
    assert first.account_id == "000123456789"
    assert fleet.outposts[1].account_id is None
    assert [(c.name, c.outpost_id, c.line) for c in fleet.clusters] == [
        ("plant7-local", OP_A, 10),
        ("plant9-local", None, 13),
    ]
    assert fleet.discovery_regions == ("us-west-2", "eu-central-1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            outposts:
              - id: op-123
                name: x
                region: us-west-2
            """,
            "fleet.yaml:2: Outpost op-123: id 'op-123' is not an Outpost ID: expected 'op-' followed by 17",
        ),
        (
            """\
            outposts:
              - id: OP-0123456789ABCDEF0
                name: x
                region: us-west-2
            """,
            "fleet.yaml:2: Outpost OP-0123456789ABCDEF0: id 'OP-0123456789ABCDEF0' must be lower-case",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: x
            """,
            f"fleet.yaml:2: Outpost {OP_A}: region is missing",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: x
                region: Oregon
            """,
            f"fleet.yaml:4: Outpost {OP_A}: region 'Oregon' is not an AWS region name",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: x
                region: us-west-2
                account: 1234
            """,
            f"fleet.yaml:5: Outpost {OP_A}: account '1234' is not an AWS account ID: expected 12 digits",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: [a, b]
                region: us-west-2
            """,
            f"fleet.yaml:3: Outpost {OP_A}: name must be a single value, got a list",
        ),
        (
            """\
            outposts:
              id: op-0123456789abcdef0
            """,
            "fleet.yaml:2: outposts must be a list (lines starting with '- '), got a mapping",
        ),
        (
            """\
            outposts:
              - just-a-string
            """,
            "fleet.yaml:2: each entry of outposts must be a mapping, got 'just-a-string'",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: A
                region: us-west-2
              - id: {OP_A}
                name: B
                region: us-west-2
            """,
            f"fleet.yaml:5: Outpost {OP_A} is listed twice (first on line 2)",
        ),
        (
            """\
            clusters:
              - name: c1
                region: us-west-2
              - name: c1
                region: us-west-2
            """,
            "fleet.yaml:4: cluster c1 in us-west-2 is listed twice (first on line 2)",
        ),
        (
            """\
            outpost:
              - id: op-0123456789abcdef0
            """,
            "fleet.yaml:1: unknown key 'outpost' in the top level (known keys: outposts, clusters, disc",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: x
                name: y
                region: us-west-2
            """,
            "fleet.yaml:4: key 'name' appears twice in an Outpost entry",
        ),
        (
            """\
            outposts:
              - id: op-0123456789abcdef0
                name: "unterminated
                region: us-west-2
            """,
            "fleet.yaml:5: YAML syntax error:",
        ),
        (
            """\
            outposts: [
            """,
            "fleet.yaml:2: YAML syntax error:",
        ),
        ("", "fleet.yaml:1: the file is empty; write `outposts: []` for an empty fleet"),
        (
            """\
            discovery:
              regions: us-west-2
            """,
            "fleet.yaml:2: discovery: regions must be a list, got 'us-west-2'",
        ),
        (
            f"""\
            outposts:
              - id: {OP_A}
                name: A
                region: us-west-2
            clusters:
              - name: c1
                region: eu-west-1
                outpost: {OP_A}
            """,
            f"fleet.yaml:6: cluster c1 is in eu-west-1 but its Outpost {OP_A} is in us-west-2",
        ),
        (
            """\
            clusters:
              - name: -bad
                region: us-west-2
            """,
            "fleet.yaml:2: cluster -bad: name '-bad' is not an EKS cluster name",
        ),
    ],
    ids=[
        "short-id",
        "upper-case-id",
        "missing-region",
        "bad-region",
        "bad-account",
        "wrong-type",
        "outposts-not-a-list",
        "entry-not-a-mapping",
        "duplicate-outpost",
        "duplicate-cluster",
        "unknown-top-level-key",
        "repeated-key",
        "yaml-syntax",
        "yaml-unclosed",
        "empty-file",
        "regions-not-a-list",
        "region-mismatch",
        "bad-cluster-name",
    ],
)
def test_each_error_names_file_line_and_reason(text: str, expected: str) -> None:
    errors = _errors(text)
    assert any(error.startswith(expected) for error in errors), errors


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    errors = _errors(
        """\
        outposts:
          - id: op-bad
            name: A
            region: us-west-2
          - id: op-0123456789abcdef0
            name: ""
            region: nowhere
        """
    )
    assert [e.split(": ", 1)[0] for e in errors] == ["fleet.yaml:2", "fleet.yaml:6", "fleet.yaml:7"]


def test_extension_keys_are_ignored() -> None:
    fleet = parse_fleet_text(
        f"x-owner: platform team\noutposts:\n  - id: {OP_A}\n    name: A\n    region: us-west-2\n"
        "    x-note: rack in hall 3\n"
    )
    assert [o.outpost_id for o in fleet.outposts] == [OP_A]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match=r"nope\.yaml:0: file does not exist"):
        load_fleet_file(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- applying


def _counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Outpost)) or 0,
        session.scalar(select(func.count()).select_from(Cluster)) or 0,
    )


def test_apply_adds_everything_and_reapplying_changes_nothing(session: Session) -> None:
    fleet = parse_fleet_text(VALID, "fleet.yaml")
    changes = inventory.apply_fleet_file(session, fleet)
    assert changes.count("add") == 4
    outpost = inventory.get_outpost_or_none(session, OP_A)
    assert outpost is not None
    assert (outpost.name, outpost.region, outpost.account_id, outpost.source) == (
        "Plant 7, rack A",
        "us-west-2",
        "000123456789",
        "file",
    )
    cluster = inventory.get_cluster_or_none(session, "plant7-local", "us-west-2")
    assert cluster is not None and cluster.outpost is outpost and cluster.source == "file"

    again = inventory.apply_fleet_file(session, parse_fleet_text(VALID, "fleet.yaml"))
    assert again.changes == []
    assert _counts(session) == (2, 2)


def test_entries_removed_from_the_file_are_removed_and_edits_land(session: Session) -> None:
    inventory.apply_fleet_file(session, parse_fleet_text(VALID, "fleet.yaml"))
    edited = f"""\
outposts:
  - id: {OP_A}
    name: Plant 7, rack A (renamed)
    region: us-west-2
clusters:
  - name: plant7-local
    region: us-west-2
    outpost: {OP_A}
"""
    changes = inventory.apply_fleet_file(session, parse_fleet_text(edited, "fleet.yaml"))
    assert {(c.action, c.key) for c in changes.changes} == {
        ("update", OP_A),
        ("remove", OP_B),
        ("remove", "eu-central-1/plant9-local"),
    }
    assert inventory.get_outpost_or_none(session, OP_B) is None
    renamed = inventory.get_outpost_or_none(session, OP_A)
    assert renamed is not None and renamed.name == "Plant 7, rack A (renamed)"
    assert renamed.account_id is None
    assert _counts(session) == (1, 1)


def test_manual_entries_are_never_touched_by_the_file(session: Session) -> None:
    inventory.add_outpost(session, outpost_id=OP_A, name="Hand-made", region="us-west-2")
    inventory.add_cluster(session, name="handmade", region="us-west-2")
    changes = inventory.apply_fleet_file(session, parse_fleet_text(VALID, "fleet.yaml"))
    assert ("skip", OP_A) in {(c.action, c.key) for c in changes.changes}
    manual = inventory.get_outpost_or_none(session, OP_A)
    assert manual is not None and (manual.name, manual.source) == ("Hand-made", "manual")
    # An empty fleet removes every file-managed entry, but the manual ones stay.
    inventory.apply_fleet_file(session, parse_fleet_text("outposts: []\n", "fleet.yaml"))
    assert inventory.get_outpost_or_none(session, OP_B) is None
    assert inventory.get_outpost_or_none(session, OP_A) is not None
    assert inventory.get_cluster_or_none(session, "handmade", "us-west-2") is not None
    assert inventory.get_cluster_or_none(session, "plant9-local", "eu-central-1") is None


def test_unknown_outpost_reference_rejects_the_whole_file(session: Session) -> None:
    inventory.apply_fleet_file(session, parse_fleet_text(VALID, "fleet.yaml"))
    before = _counts(session)
    bad = f"""\
outposts:
  - id: {OP_B}
    name: Plant 9 renamed
    region: eu-central-1
clusters:
  - name: plant7-local
    region: us-west-2
    outpost: {OP_A}
"""
    with pytest.raises(FleetFileError) as info:
        inventory.apply_fleet_file(session, parse_fleet_text(bad, "fleet.yaml"))
    assert str(info.value).startswith(
        f"fleet.yaml:6: cluster plant7-local: Outpost {OP_A} is not in the file"
    )
    # Nothing was applied: the rename did not happen and OP_A was not removed.
    assert _counts(session) == before
    kept = inventory.get_outpost_or_none(session, OP_B)
    assert kept is not None and kept.name == "Plant 9"
    assert inventory.get_outpost_or_none(session, OP_A) is not None


def test_file_takes_over_discovered_entries(session: Session) -> None:
    session.add(
        Outpost(outpost_id=OP_A, name=OP_A, region="us-west-2", account_id="111122223333", source="discovery")
    )
    session.flush()
    changes = inventory.apply_fleet_file(
        session, parse_fleet_text(VALID.replace("    account: 000123456789\n", ""), "f")
    )
    outpost = inventory.get_outpost_or_none(session, OP_A)
    assert outpost is not None
    assert (outpost.source, outpost.name, outpost.account_id) == ("file", "Plant 7, rack A", "111122223333")
    assert any(
        c.action == "update" and c.key == OP_A and "source: discovery -> file" in c.detail
        for c in changes.changes
    )
