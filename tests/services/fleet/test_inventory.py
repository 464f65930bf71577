"""Fleet services: validation naming each field, precedence, updates, and the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Outpost
from app.models.audit import AuditEvent
from app.services.audit import Actor
from app.services.fleet import inventory
from app.services.fleet.fleet_file import parse_fleet_text

OP_A = "op-0123456789abcdef0"


def test_validation_names_every_bad_field(session: Session) -> None:
    with pytest.raises(inventory.FleetValidationError) as info:
        inventory.add_outpost(session, outpost_id="op-1", name=" ", region="Oregon", account_id="abc")
    assert set(info.value.errors) == {"outpost_id", "name", "region", "account_id"}
    assert str(info.value).startswith("outpost_id: 'op-1' is not an Outpost ID")
    with pytest.raises(inventory.FleetValidationError) as cluster_info:
        inventory.add_cluster(session, name="bad name", region="us-west-2", outpost_id="op-2")
    assert set(cluster_info.value.errors) == {"name", "outpost_id"}
    assert session.scalars(select(Outpost)).all() == []


def test_values_are_trimmed(session: Session) -> None:
    outpost = inventory.add_outpost(
        session, outpost_id=f" {OP_A} ", name=" Plant 7 ", region=" us-west-2", account_id=" "
    )
    assert (outpost.outpost_id, outpost.name, outpost.region, outpost.account_id) == (
        OP_A,
        "Plant 7",
        "us-west-2",
        None,
    )


def test_manual_add_takes_over_a_discovered_outpost(session: Session) -> None:
    session.add(
        Outpost(outpost_id=OP_A, name=OP_A, region="us-west-2", account_id="123456789012", source="discovery")
    )
    session.flush()
    with pytest.raises(inventory.FleetValidationError, match="discovery found"):
        inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7", region="eu-west-1")
    outpost = inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7", region="us-west-2")
    assert (outpost.source, outpost.name, outpost.account_id) == ("manual", "Plant 7", "123456789012")


def test_update_outpost_and_refusals(session: Session) -> None:
    inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7", region="us-west-2")
    updated = inventory.update_outpost(session, OP_A, name="Plant 7A", account_id="123456789012")
    assert (updated.name, updated.account_id) == ("Plant 7A", "123456789012")
    cleared = inventory.update_outpost(session, OP_A, account_id="")
    assert (cleared.name, cleared.account_id) == ("Plant 7A", None)
    with pytest.raises(inventory.FleetValidationError, match="name: must not be empty"):
        inventory.update_outpost(session, OP_A, name="")
    with pytest.raises(inventory.FleetNotFoundError, match="no Outpost op-0fedcba9876543210"):
        inventory.update_outpost(session, "op-0fedcba9876543210", name="x")

    other = "op-0fedcba9876543210"
    inventory.apply_fleet_file(
        session, parse_fleet_text(f"outposts:\n  - id: {other}\n    name: F\n    region: us-west-2\n")
    )
    with pytest.raises(inventory.FleetConflictError, match="managed by the fleet file"):
        inventory.update_outpost(session, other, name="x")


def test_removing_an_outpost_keeps_its_clusters_unlinked(session: Session) -> None:
    inventory.add_outpost(session, outpost_id=OP_A, name="Plant 7", region="us-west-2")
    inventory.add_cluster(session, name="c1", region="us-west-2", outpost_id=OP_A)
    inventory.remove_outpost(session, OP_A)
    cluster = inventory.get_cluster_or_none(session, "c1", "us-west-2")
    assert cluster is not None and cluster.outpost is None


def test_every_change_is_audited(session: Session) -> None:
    inventory.add_outpost(
        session, outpost_id=OP_A, name="Plant 7", region="us-west-2", actor=Actor(name="alice")
    )
    inventory.add_cluster(session, name="c1", region="us-west-2", actor=Actor(name="alice"))
    inventory.remove_cluster(session, "c1", "us-west-2", actor=Actor(name="bob"))
    inventory.apply_fleet_file(
        session,
        parse_fleet_text("clusters:\n  - name: c2\n    region: us-west-2\n"),
        actor=inventory.FLEET_FILE_ACTOR,
    )
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.actor, e.action, e.target) for e in events] == [
        ("alice", "fleet.outpost.add", f"outpost:{OP_A}"),
        ("alice", "fleet.cluster.add", "cluster:us-west-2/c1"),
        ("bob", "fleet.cluster.remove", "cluster:us-west-2/c1"),
        ("fleet-file", "fleet.cluster.add", "cluster:us-west-2/c2"),
    ]
