"""What a drill leaves in the records: uptime and incidents without drill time (shown beside them),
a report after an abort, notifications marked or held back per rule, a failed item as a finding."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.integrations.vault import Vault
from app.models import ClusterReadiness, Drill, DrillCheck, NotificationDelivery
from app.services.audit import Actor
from app.services.connectivity import queries
from app.services.drills import lifecycle, report
from app.services.drills.uptime import drill_incident_ids
from app.services.notifications import rules
from app.services.notifications.events import emit
from app.services.readiness import records
from app.services.readiness.model import Status
from app.services.readiness.specs import finding
from tests.factories import add_samples, make_cluster, make_outpost
from tests.fixtures.notifications import webhook_channel

ADMIN = Actor(name="ada", role="admin")
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _drill(session: Session, outpost_id: str, start: dt.datetime, **kwargs: object) -> Drill:
    drill = lifecycle.plan_drill(
        session,
        outpost_id=outpost_id,
        title="service link drill",
        planned_start=start,
        duration_minutes=45,
        actor=ADMIN,
        now=start,
        **kwargs,  # type: ignore[arg-type]
    )
    lifecycle.start_drill(session, drill, ADMIN, start)
    return drill


def test_uptime_and_incidents_leave_the_drill_window_out_and_show_it(session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    start = NOW - dt.timedelta(hours=2)
    # 2 hours of samples: connected, except 45 minutes cut off during the drill.
    values = [1.0] * 30 + [0.0] * 45 + [1.0] * 45
    add_samples(session, outpost, start, values)
    drill = _drill(session, outpost.outpost_id, start + dt.timedelta(minutes=30))
    lifecycle.end_drill(session, drill, ADMIN, start + dt.timedelta(minutes=75), valid_days=90)
    session.flush()

    counted = queries.uptime_by_outpost(session, [outpost.id], NOW, ["24h"], exclude_drills=False)[
        outpost.id
    ]["24h"]
    assert counted.ratio is not None and round(counted.ratio, 4) == round(75 / 120, 4)
    assert counted.drill_seconds == 0

    shown = queries.uptime_by_outpost(session, [outpost.id], NOW, ["24h"])[outpost.id]["24h"]
    assert shown.ratio == 1.0
    assert shown.drill_seconds == 45 * 60
    assert shown.known_seconds == 75 * 60
    assert shown.unknown_seconds == counted.unknown_seconds  # the drill's minutes were all known

    incidents = queries.list_incidents(session, outpost.id, NOW)
    assert len(incidents) == 1
    assert drill_incident_ids(session, outpost.id, incidents, NOW) == {incidents[0].incident.id}


def test_an_outage_outside_any_drill_still_counts(session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    start = NOW - dt.timedelta(hours=2)
    add_samples(session, outpost, start, [1.0] * 30 + [0.0] * 10 + [1.0] * 80)
    drill = _drill(session, outpost.outpost_id, start + dt.timedelta(minutes=60))
    lifecycle.end_drill(session, drill, ADMIN, start + dt.timedelta(minutes=70), valid_days=90)
    uptime = queries.uptime_by_outpost(session, [outpost.id], NOW, ["24h"])[outpost.id]["24h"]
    assert uptime.drill_seconds == 600
    assert uptime.ratio is not None and round(uptime.ratio, 4) == round(100 / 110, 4)
    incidents = queries.list_incidents(session, outpost.id, NOW)
    assert drill_incident_ids(session, outpost.id, incidents, NOW) == set()


def test_aborting_leaves_a_report(session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED", name="Plant 3")
    drill = _drill(session, outpost.outpost_id, NOW, participants=["bo"])
    session.add(
        DrillCheck(
            drill_id=drill.id,
            item="disconnect",
            subject="Plant 3",
            status="fail",
            summary="The Outpost is not cut off",
            evidence=[],
            baseline={},
            rounds=1,
        )
    )
    session.flush()
    session.refresh(drill)
    lifecycle.abort_drill(
        session,
        drill,
        ADMIN,
        NOW + dt.timedelta(minutes=5),
        reason="firewall change rolled back",
        valid_days=90,
    )
    assert (drill.state, drill.outcome) == ("aborted", "failed")
    data = report.report(session, drill, NOW + dt.timedelta(minutes=6))
    assert data["abort_reason"] == "firewall change rolled back"
    assert [e["kind"] for e in data["timeline"]] == ["planned", "started", "aborted"]
    assert data["participants"] == ["ada", "bo"]
    assert data["failures"][0]["summary"] == "The Outpost is not cut off"
    text = report.markdown(data)
    assert "- Aborted: firewall change rolled back" in text
    assert "| The disconnect really happened" in text and "| fail |" in text
    assert "Fix: The disconnect really happened" in text
    # Aborting again is refused; an aborted drill attests nothing.
    import pytest

    from app.services.drills.vocabulary import DrillConflict

    with pytest.raises(DrillConflict):
        lifecycle.abort_drill(session, drill, ADMIN, NOW, reason="again", valid_days=90)


def test_notifications_say_drill_or_stay_quiet_per_rule(session: Session, vault: Vault) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    loud = webhook_channel(session, vault, "http://127.0.0.1:9/loud", name="loud")
    quiet = webhook_channel(session, vault, "http://127.0.0.1:9/quiet", name="quiet")
    rules.create_rule(session, name="label", channel_id=loud.id, event_kinds="outpost", actor=ADMIN, now=NOW)
    rules.create_rule(
        session,
        name="hush",
        channel_id=quiet.id,
        event_kinds="outpost",
        during_drill="quiet",
        actor=ADMIN,
        now=NOW,
    )
    drill = _drill(session, outpost.outpost_id, NOW - dt.timedelta(minutes=5))
    event = emit(
        session,
        key=f"outpost:{outpost.outpost_id}:link",
        kind="outpost.disconnected",
        phase="open",
        title=f"{outpost.name} is disconnected",
        body="ConnectedStatus 0",
        now=NOW,
        attrs={"outpost": outpost.outpost_id, "region": outpost.region},
    )
    assert event.title == f"[drill #{drill.id}] {outpost.name} is disconnected"
    assert event.body.startswith(f"During disconnect drill #{drill.id}")
    by_channel = {
        d.channel_id: d
        for d in session.scalars(
            select(NotificationDelivery).where(NotificationDelivery.event_id == event.id)
        )
    }
    assert by_channel[loud.id].status == "pending"
    assert by_channel[quiet.id].status == "suppressed"
    assert by_channel[quiet.id].last_error == f"held back during drill #{drill.id}"
    # After the drill the same rule sends again, unmarked.
    lifecycle.end_drill(session, drill, ADMIN, NOW + dt.timedelta(minutes=1), valid_days=90)
    later = emit(
        session,
        key=f"outpost:{outpost.outpost_id}:link2",
        kind="outpost.disconnected",
        phase="open",
        title="again",
        body="x",
        now=NOW + dt.timedelta(minutes=2),
        attrs={"outpost": outpost.outpost_id},
    )
    assert later.title == "again"
    assert {d.status for d in later.deliveries} == {"pending"}


def test_a_failed_item_becomes_a_finding_until_a_drill_passes(session: Session) -> None:
    outpost = make_outpost(session, state="CONNECTED")
    cluster = make_cluster(session)
    cluster.outpost_pk = outpost.id
    session.add(
        ClusterReadiness(
            cluster_pk=cluster.id, findings=[finding("cluster-health", Status.passed, "ok").as_dict()]
        )
    )
    session.flush()
    drill = _drill(session, outpost.outpost_id, NOW)
    session.add(
        DrillCheck(
            drill_id=drill.id,
            item="breakglass",
            subject=f"{cluster.name}: no valid credential",
            cluster_pk=cluster.id,
            status="fail",
            summary="No valid break-glass credential",
            evidence=[],
            baseline={},
            rounds=1,
        )
    )
    session.flush()
    session.refresh(drill)
    lifecycle.end_drill(session, drill, ADMIN, NOW + dt.timedelta(minutes=30), valid_days=90)
    found = {
        f.check_id: f
        for f in records.current_findings(session, cluster, session.get(ClusterReadiness, cluster.id), NOW)
    }
    drill_finding = found["disconnect-drill"]
    assert drill_finding.status == Status.fail
    assert f"drill #{drill.id}" in drill_finding.summary
    assert "No valid break-glass credential" in drill_finding.evidence[0].detail
    # The topic cannot be attested by hand: only a passed drill attests it.
    import pytest

    from app.services.errors import InvalidInput

    with pytest.raises(InvalidInput):
        records.add_attestation(
            session,
            cluster,
            topic="disconnect-drill",
            statement="trust me, it works",
            expires_at=None,
            actor=ADMIN,
        )


def test_the_scheduler_starts_a_planned_drill_and_ends_it_after_its_window(
    session: Session, session_factory: object, settings: object
) -> None:
    from app.services.drills import runner

    outpost = make_outpost(session, state="CONNECTED")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    drill = lifecycle.plan_drill(
        session,
        outpost_id=outpost.outpost_id,
        title="scheduled",
        planned_start=start,
        duration_minutes=20,
        actor=ADMIN,
        now=start - dt.timedelta(minutes=10),
    )
    session.commit()
    assert runner.advance(settings, session_factory, now=start - dt.timedelta(minutes=1)) == {  # type: ignore[arg-type]
        "started": 0,
        "checked": 0,
        "ended": 0,
    }
    assert runner.advance(settings, session_factory, now=start) == {"started": 1, "checked": 1, "ended": 0}  # type: ignore[arg-type]
    session.expire_all()
    assert (drill.state, drill.started_by) == ("running", "lifeline")
    assert {c.item for c in drill.checks} == {"disconnect"}
    counts = runner.advance(settings, session_factory, now=start + dt.timedelta(minutes=21))  # type: ignore[arg-type]
    assert counts["ended"] == 1
    session.expire_all()
    assert drill.state == "ended" and drill.ended_by == "lifeline"
