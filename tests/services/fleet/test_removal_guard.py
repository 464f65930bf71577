"""Issue 12, finding 2: removing a cluster never takes its live credentials' records with it.

On the landed version removing a cluster cascaded to every credential record on it (the certificates and
bindings stayed live with nothing left to revoke them), and SQLite then reused the ids.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Cluster, Credential
from app.services.fleet import inventory
from app.services.fleet.fleet_file import parse_fleet_text
from tests.factories import add_credential, make_cluster


def _manual_cluster(session: Session, name: str = "edge-1") -> Cluster:
    cluster = make_cluster(session, name)
    cluster.source = inventory.MANUAL
    session.flush()
    return cluster


def test_removal_by_hand_is_refused_while_credentials_are_live(session: Session) -> None:
    cluster = _manual_cluster(session)
    add_credential(session, cluster, "breakglass", 30)
    with pytest.raises(inventory.FleetConflictError) as refused:
        inventory.remove_cluster(session, "edge-1", "us-west-2")
    assert "live credentials (#" in str(refused.value) and "breakglass-user (active)" in str(refused.value)
    assert "revoke them first" in str(refused.value)
    assert session.scalar(select(Credential.id)) is not None
    assert session.get(Cluster, cluster.id) is not None


def test_removal_after_revoking_keeps_ids_unique(session: Session) -> None:
    cluster = _manual_cluster(session)
    add_credential(session, cluster, "breakglass", 30)
    old = session.scalars(select(Credential)).one()
    old_id = old.id
    old.status = "revoked"
    session.flush()
    inventory.remove_cluster(session, "edge-1", "us-west-2")
    assert session.scalars(select(Credential)).all() == []
    again = _manual_cluster(session, "edge-2")
    add_credential(session, again, "breakglass", 30)
    new_id = session.scalars(select(Credential.id)).one()
    assert new_id > old_id  # SQLite AUTOINCREMENT: an old audit row never names a new credential


def test_database_refuses_a_cascading_cluster_delete(session: Session) -> None:
    cluster = _manual_cluster(session)
    add_credential(session, cluster, "breakglass", 30)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(Cluster.__table__.delete().where(Cluster.__table__.c.id == cluster.id))


def test_fleet_file_keeps_a_cluster_with_live_credentials(session: Session) -> None:
    text = (
        "outposts:\n  - id: op-0123456789abcdef0\n    name: Plant 7\n    region: us-west-2\n"
        "clusters:\n  - name: edge-1\n    region: us-west-2\n    outpost: op-0123456789abcdef0\n"
    )
    inventory.apply_fleet_file(session, parse_fleet_text(text, "fleet.yaml"))
    cluster = session.scalars(select(Cluster)).one()
    add_credential(session, cluster, "breakglass", 30)
    changes = inventory.apply_fleet_file(
        session,
        parse_fleet_text(
            "outposts:\n  - id: op-0123456789abcdef0\n    name: Plant 7\n    region: us-west-2\n",
            "fleet.yaml",
        ),
    )
    assert session.get(Cluster, cluster.id) is not None
    skipped = [c for c in changes.changes if c.action == "skip" and c.kind == "cluster"]
    assert skipped and "live credentials" in skipped[0].detail


def test_discovery_keeps_a_vanished_cluster_with_live_credentials(session: Session) -> None:
    import datetime as dt

    from app.integrations.eks import EksListing
    from app.services.fleet.discovery import record_discovered_clusters

    cluster = make_cluster(session, "edge-1")
    cluster.source = inventory.DISCOVERY
    add_credential(session, cluster, "breakglass", 30)
    changes = record_discovered_clusters(session, EksListing("us-west-2", (), 1), dt.datetime.now(dt.UTC))
    assert session.get(Cluster, cluster.id) is not None
    assert any("live credentials" in c.detail for c in changes.changes)
