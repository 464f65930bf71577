"""A drill's life: planned, started (by hand or when its time comes), ended or aborted; a person's
confirmation of an item; the timeline; and what an ended drill leaves behind (its outcome, a
readiness attestation per cluster whose checks all passed, notifications). Flush, never commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Cluster, Drill, DrillCheck, DrillEvent, Outpost, ReadinessAttestation
from app.services.audit import Actor, record_audit
from app.services.drills.vocabulary import (
    ABORTED,
    ATTESTATION_TOPIC,
    CONFIRM,
    DEFAULT_CHECKLIST,
    ENDED,
    FAIL,
    FAILED,
    FINISHED,
    INCOMPLETE,
    ITEMS,
    MAX_DURATION_MINUTES,
    PASS,
    PASSED,
    PENDING,
    PLANNED,
    RUNNING,
    DrillConflict,
    DrillInputError,
)
from app.services.errors import NotFound
from app.services.notifications.events import emit


def get_drill(session: Session, drill_id: int) -> Drill:
    drill = session.get(Drill, drill_id)
    if drill is None:
        raise NotFound(f"No drill #{drill_id}. The Drills page lists every drill.")
    return drill


def list_drills(
    session: Session, *, outpost_pk: int | None = None, cluster_pk: int | None = None, limit: int = 100
) -> list[Drill]:
    """Newest first; a cluster's drills are those of its Outpost."""
    stmt = select(Drill).order_by(Drill.planned_start.desc(), Drill.id.desc()).limit(limit)
    if cluster_pk is not None:
        cluster = session.get(Cluster, cluster_pk)
        outpost_pk = cluster.outpost_pk if cluster is not None else -1
    if outpost_pk is not None:
        stmt = stmt.where(Drill.outpost_pk == outpost_pk)
    return list(session.scalars(stmt))


def running_drill(session: Session, outpost_pk: int) -> Drill | None:
    return session.scalar(select(Drill).where(Drill.outpost_pk == outpost_pk, Drill.state == RUNNING))


def running_drill_for(session: Session, outpost_id: str) -> Drill | None:
    """The running drill of the Outpost with this AWS ID, if any."""
    return session.scalar(
        select(Drill)
        .join(Outpost, Outpost.id == Drill.outpost_pk)
        .where(Outpost.outpost_id == outpost_id, Drill.state == RUNNING)
    )


def clusters_of(session: Session, drill: Drill) -> list[Cluster]:
    return list(
        session.scalars(select(Cluster).where(Cluster.outpost_pk == drill.outpost_pk).order_by(Cluster.name))
    )


def add_event(session: Session, drill: Drill, kind: str, message: str, actor: str, now: dt.datetime) -> None:
    session.add(DrillEvent(drill_id=drill.id, kind=kind, message=message, actor=actor, at=now))


def _audit(session: Session, actor: Actor, action: str, drill: Drill, **details: object) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        target=f"drill:{drill.id}",
        details={"outpost": drill.outpost.outpost_id, "title": drill.title, **actor.details(), **details},
    )


# ---------------------------------------------------------------- planning


def plan_drill(
    session: Session,
    *,
    outpost_id: str,
    title: str,
    planned_start: dt.datetime | None,
    duration_minutes: int,
    actor: Actor,
    now: dt.datetime,
    ticket_ref: str | None = None,
    participants: Sequence[str] = (),
    checklist: Sequence[str] | None = None,
    exclude_from_uptime: bool = True,
) -> Drill:
    """Record a planned drill (audited); refuses bad fields all at once, naming each."""
    errors: dict[str, str] = {}
    outpost = session.scalar(select(Outpost).where(Outpost.outpost_id == outpost_id.strip().lower()))
    if outpost is None:
        errors["outpost"] = f"no Outpost {outpost_id!r} in the fleet (add it on the Fleet page)"
    title = title.strip()
    if not title:
        errors["title"] = "give the drill a title (what is rehearsed)"
    elif len(title) > 200:
        errors["title"] = "at most 200 characters"
    if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
        errors["duration_minutes"] = f"between 1 and {MAX_DURATION_MINUTES} minutes (24 hours)"
    start = planned_start or now
    if start.tzinfo is None:
        errors["planned_start"] = "give the time with its offset, or in UTC (e.g. 2026-12-02T06:00Z)"
    elif start < now - dt.timedelta(minutes=5):
        errors["planned_start"] = "the planned start is in the past; leave it empty to start now"
    items = list(checklist) if checklist else list(DEFAULT_CHECKLIST)
    unknown = [key for key in items if key not in ITEMS]
    if unknown:
        errors["checklist"] = f"unknown items {', '.join(unknown)}; choose from {', '.join(ITEMS)}"
    people = [p.strip() for p in participants if p.strip()]
    if any(len(p) > 150 for p in people):
        errors["participants"] = "a name has at most 150 characters"
    if ticket_ref and len(ticket_ref.strip()) > 200:
        errors["ticket_ref"] = "at most 200 characters"
    if errors:
        raise DrillInputError(errors=errors)
    assert outpost is not None
    if actor.name not in people:
        people.insert(0, actor.name)
    drill = Drill(
        outpost_pk=outpost.id,
        outpost=outpost,
        title=title,
        ticket_ref=(ticket_ref or "").strip() or None,
        participants=people,
        checklist=[key for key in ITEMS if key in items],
        planned_start=start,
        duration_minutes=duration_minutes,
        state=PLANNED,
        exclude_from_uptime=exclude_from_uptime,
        created_by=actor.name,
        created_at=now,
        follow_ups=[],
    )
    session.add(drill)
    session.flush()
    add_event(
        session,
        drill,
        "planned",
        f"Planned for {start:%Y-%m-%d %H:%M} UTC, {duration_minutes} min",
        actor.name,
        now,
    )
    _audit(
        session,
        actor,
        "drill.plan",
        drill,
        planned_start=start.isoformat(),
        duration_minutes=duration_minutes,
    )
    session.flush()
    return drill


# ---------------------------------------------------------------- start, end, abort


def start_drill(session: Session, drill: Drill, actor: Actor, now: dt.datetime) -> Drill:
    """planned -> running (one running drill per Outpost); audited and announced."""
    if drill.state != PLANNED:
        raise DrillConflict(f"drill #{drill.id} is {drill.state}; only a planned drill can start")
    other = running_drill(session, drill.outpost_pk)
    if other is not None:
        raise DrillConflict(f"drill #{other.id} is already running on {drill.outpost.name}; end it first")
    drill.state, drill.started_at, drill.started_by = RUNNING, now, actor.name
    if actor.name not in drill.participants:
        drill.participants = [*drill.participants, actor.name]
    add_event(session, drill, "started", f"Started by {actor.name}", actor.name, now)
    _audit(session, actor, "drill.start", drill)
    _notify(session, drill, "drill.started", "open", f"{actor.name} started the drill", now)
    session.flush()
    return drill


def end_drill(session: Session, drill: Drill, actor: Actor, now: dt.datetime, *, valid_days: int) -> Drill:
    """running -> ended: the outcome is decided, passed clusters get an attestation."""
    if drill.state != RUNNING:
        raise DrillConflict(f"drill #{drill.id} is {drill.state}; only a running drill can end")
    return _finish(session, drill, actor, now, ENDED, valid_days=valid_days)


def abort_drill(
    session: Session, drill: Drill, actor: Actor, now: dt.datetime, *, reason: str, valid_days: int
) -> Drill:
    """planned or running -> aborted (the reason is kept); the report stays, no attestation."""
    if drill.state in FINISHED:
        raise DrillConflict(f"drill #{drill.id} is already {drill.state}")
    reason = reason.strip()
    if not reason:
        raise DrillInputError("say why the drill is aborted", field="reason")
    drill.abort_reason = reason[:2000]
    return _finish(session, drill, actor, now, ABORTED, valid_days=valid_days)


def _finish(
    session: Session, drill: Drill, actor: Actor, now: dt.datetime, state: str, *, valid_days: int
) -> Drill:
    was_running = drill.state == RUNNING
    drill.state, drill.ended_at, drill.ended_by = state, now, actor.name
    if drill.started_at is None:
        drill.started_at = now
    drill.outcome = outcome_of(drill.checks, aborted=state == ABORTED)
    drill.follow_ups = follow_ups_of(drill.checks)
    word = "Aborted" if state == ABORTED else "Ended"
    detail = f": {drill.abort_reason}" if state == ABORTED else ""
    add_event(
        session, drill, state, f"{word} by {actor.name}{detail}; outcome {drill.outcome}", actor.name, now
    )
    attested = _attest(session, drill, now, valid_days) if state == ENDED else []
    _audit(
        session,
        actor,
        f"drill.{'abort' if state == ABORTED else 'end'}",
        drill,
        outcome=drill.outcome,
        reason=drill.abort_reason,
        attested_clusters=attested,
    )
    if was_running:
        _notify(
            session,
            drill,
            "drill.ended",
            "resolved",
            f"{actor.name} {word.lower()} the drill: {drill.outcome}",
            now,
        )
    session.flush()
    return drill


def outcome_of(checks: Sequence[DrillCheck], *, aborted: bool = False) -> str:
    """failed when an item failed; passed when every item passed (or was confirmed); else incomplete."""
    statuses = [c.status for c in checks]
    if FAIL in statuses:
        return FAILED
    if aborted or not statuses or any(s in (PENDING, CONFIRM) for s in statuses):
        return INCOMPLETE
    return PASSED


def follow_ups_of(checks: Sequence[DrillCheck]) -> list[str]:
    """One follow-up per failed item, and one per item nobody confirmed."""
    found = []
    for check in checks:
        label = ITEMS[check.item].label if check.item in ITEMS else check.item
        if check.status == FAIL:
            found.append(f"Fix: {label} — {check.subject}: {check.summary}")
        elif check.status in (PENDING, CONFIRM):
            found.append(f"Not verified: {label} — {check.subject}")
    return found


def cluster_passed(drill: Drill, cluster_pk: int) -> bool:
    relevant = [c for c in drill.checks if c.cluster_pk in (None, cluster_pk)]
    return bool(relevant) and all(c.status == PASS for c in relevant)


def _attest(session: Session, drill: Drill, now: dt.datetime, valid_days: int) -> list[str]:
    """A readiness attestation for each cluster whose every check passed; returns their names."""
    from app.services.readiness.records import refresh_score

    names = []
    for cluster in clusters_of(session, drill):
        if not cluster_passed(drill, cluster.id):
            continue
        session.add(
            ReadinessAttestation(
                cluster_pk=cluster.id,
                topic=ATTESTATION_TOPIC,
                statement=f"Access verified in a drill on {now:%Y-%m-%d} (drill #{drill.id}: {drill.title})",
                author=f"drill #{drill.id}",
                attested_at=now,
                expires_at=now + dt.timedelta(days=valid_days),
            )
        )
        session.flush()
        refresh_score(session, cluster)
        names.append(cluster.name)
    if names:
        add_event(
            session,
            drill,
            "attested",
            f"Readiness attestation for {', '.join(names)} (valid {valid_days} days)",
            "lifeline",
            now,
        )
    return names


# ---------------------------------------------------------------- a person's confirmation


def confirm_check(
    session: Session, drill: Drill, check_id: int, *, ok: bool, note: str, actor: Actor, now: dt.datetime
) -> DrillCheck:
    """A person says an item worked (pass) or did not (fail), with a note; audited."""
    check = session.get(DrillCheck, check_id)
    if check is None or check.drill_id != drill.id:
        raise NotFound(f"No check #{check_id} in drill #{drill.id}.")
    if drill.state != RUNNING:
        raise DrillConflict(f"drill #{drill.id} is {drill.state}; confirm items while it runs")
    note = note.strip()
    if not ok and not note:
        raise DrillInputError("say what did not work", field="note")
    before = check.status
    check.status = PASS if ok else FAIL
    check.confirmed_by, check.confirmed_at, check.note = actor.name, now, note or None
    check.summary = f"{'Confirmed' if ok else 'Refuted'} by {actor.name}" + (f": {note}" if note else "")
    check.checked_at = now
    check.evidence = [*check.evidence, {"at": now.isoformat(), "text": check.summary}]
    add_event(
        session,
        drill,
        "confirmed" if ok else "item_failed",
        f"{check.item} on {check.subject}: {check.summary}",
        actor.name,
        now,
    )
    _audit(
        session,
        actor,
        "drill.confirm",
        drill,
        check=check.item,
        subject=check.subject,
        ok=ok,
        note=note or None,
    )
    if not ok and before != FAIL:
        notify_item_failed(session, drill, check, now)
    session.flush()
    return check


# ---------------------------------------------------------------- scheduling


def due_to_start(session: Session, now: dt.datetime) -> list[Drill]:
    return list(
        session.scalars(
            select(Drill).where(Drill.state == PLANNED, Drill.planned_start <= now).order_by(Drill.id)
        )
    )


def due_to_end(session: Session, now: dt.datetime) -> list[Drill]:
    running = session.scalars(select(Drill).where(Drill.state == RUNNING).order_by(Drill.id))
    return [
        d for d in running if d.started_at and d.started_at + dt.timedelta(minutes=d.duration_minutes) <= now
    ]


def running_drills(session: Session) -> list[Drill]:
    return list(session.scalars(select(Drill).where(Drill.state == RUNNING).order_by(Drill.id)))


# ---------------------------------------------------------------- notifications


def _notify(session: Session, drill: Drill, kind: str, phase: str, body: str, now: dt.datetime) -> None:
    outpost = drill.outpost
    emit(
        session,
        key=f"drill:{drill.id}",
        kind=kind,
        phase=phase,
        title=f"Disconnect drill #{drill.id} on {outpost.name} {kind.split('.')[1]}",
        body=f"{body}. {drill.title}" + (f" (ticket {drill.ticket_ref})" if drill.ticket_ref else ""),
        attrs={
            "drill_id": drill.id,
            "outpost": outpost.outpost_id,
            "region": outpost.region,
            "outcome": drill.outcome,
        },
        now=now,
    )


def notify_item_failed(session: Session, drill: Drill, check: DrillCheck, now: dt.datetime) -> None:
    outpost = drill.outpost
    emit(
        session,
        key=f"drill:{drill.id}:{check.item}:{check.subject}",
        kind="drill.item_failed",
        phase="info",
        title=f"Drill #{drill.id} on {outpost.name}: {check.item} failed on {check.subject}",
        body=check.summary,
        attrs={
            "drill_id": drill.id,
            "outpost": outpost.outpost_id,
            "region": outpost.region,
            "check": check.item,
            "subject": check.subject,
        },
        now=now,
    )
