"""A drill on the simulator: every check passes for a well-prepared cluster, and each one fails for
the right reason when its precondition is broken."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.models import Credential, Drill, DrillCheck, ReadinessAttestation
from app.services.drills import lifecycle, runner
from app.services.drills.checks import DISCONNECT_GRACE
from app.services.readiness import records
from lifeline_simulator import SimulatedCluster
from tests.fixtures.drills import RESPONDER, DrillSite

pytestmark = pytest.mark.usefixtures("aws_endpoint")


def _checks(site: DrillSite, drill_id: int) -> dict[tuple[str, str], DrillCheck]:
    site.session.expire_all()
    rows = site.session.scalars(select(DrillCheck).where(DrillCheck.drill_id == drill_id))
    return {(c.item, c.subject): c for c in rows}


def _by_item(site: DrillSite, drill_id: int) -> dict[str, list[DrillCheck]]:
    found: dict[str, list[DrillCheck]] = {}
    for (item, _subject), check in _checks(site, drill_id).items():
        found.setdefault(item, []).append(check)
    return found


def _after_grace(now: dt.datetime) -> dt.datetime:
    return now + DISCONNECT_GRACE + dt.timedelta(seconds=30)


def test_well_prepared_cluster_passes_every_check_and_is_attested(drill_site: DrillSite) -> None:
    site = drill_site
    credential_id = site.issue_breakglass()
    site.issue_fallback()
    now = dt.datetime.now(dt.UTC)
    site.cut_off(now)
    drill_id = site.start(now)

    runner.run_round(site.settings, site.factory, drill_id, now=_after_grace(now))
    found = _by_item(site, drill_id)

    automatic = [
        "disconnect",
        "iam_refused",
        "breakglass",
        "lifeline_reads",
        "issue_new",
        "nodes_workloads",
        "predictions",
    ]
    for item in automatic:
        assert found[item], item
        for check in found[item]:
            assert check.status == "pass", (item, check.subject, check.summary, check.evidence)
    # Every path of the credential: the endpoint and the control-plane IP with tls-server-name.
    subjects = sorted(c.subject for c in found["breakglass"])
    assert subjects == [
        f"plant9-local #{credential_id} alice@breakglass via IP 127.0.0.1 (tls-server-name 127.0.0.1)",
        f"plant9-local #{credential_id} alice@breakglass via endpoint",
    ]
    assert "401" in found["iam_refused"][0].summary
    assert "2 nodes read as lifeline" in found["lifeline_reads"][0].summary
    # The credential the drill issued is revoked again.
    issued = site.session.scalars(
        select(Credential).where(Credential.username.like("lifeline-drill-%"))
    ).all()
    assert [c.status for c in issued] == ["revoked"]
    # What only a person can confirm waits for them.
    assert [c.status for c in found["local_dns"] + found["laptop_kubeconfig"]] == ["confirm", "confirm"]

    drill = site.session.get(Drill, drill_id)
    assert drill is not None
    for check in found["local_dns"] + found["laptop_kubeconfig"]:
        lifecycle.confirm_check(
            site.session, drill, check.id, ok=True, note="nslookup ok", actor=RESPONDER, now=_after_grace(now)
        )
    ended = _after_grace(now) + dt.timedelta(minutes=1)
    lifecycle.end_drill(site.session, drill, RESPONDER, ended, valid_days=site.settings.drill_valid_days)
    site.session.commit()
    assert drill.outcome == "passed" and drill.follow_ups == []

    attestation = site.session.scalars(
        select(ReadinessAttestation).where(ReadinessAttestation.cluster_pk == site.cluster.id)
    ).one()
    assert attestation.topic == "disconnect-drill"
    assert attestation.statement.startswith(f"Access verified in a drill on {ended:%Y-%m-%d}")
    assert attestation.expires_at == ended + dt.timedelta(days=90)
