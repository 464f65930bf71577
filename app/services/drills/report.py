"""A drill's report: timeline, checklist with evidence, participants, failures and follow-ups, as
one dict (the JSON export and the API) and as Markdown."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from app.models import Drill
from app.services.drills.lifecycle import follow_ups_of, outcome_of
from app.services.drills.uptime import drill_windows
from app.services.drills.vocabulary import FAIL, FINISHED, ITEMS


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def report(session: Session, drill: Drill, now: dt.datetime) -> dict[str, Any]:
    outcome = drill.outcome if drill.state in FINISHED else outcome_of(drill.checks)
    checks = [
        {
            "id": c.id,
            "item": c.item,
            "label": ITEMS[c.item].label if c.item in ITEMS else c.item,
            "subject": c.subject,
            "status": c.status,
            "summary": c.summary,
            "evidence": list(c.evidence),
            "first_checked_at": _iso(c.first_checked_at),
            "checked_at": _iso(c.checked_at),
            "rounds": c.rounds,
            "confirmed_by": c.confirmed_by,
            "confirmed_at": _iso(c.confirmed_at),
        }
        for c in drill.checks
    ]
    end = drill.ended_at or now
    return {
        "id": drill.id,
        "title": drill.title,
        "outpost": {
            "outpost_id": drill.outpost.outpost_id,
            "name": drill.outpost.name,
            "region": drill.outpost.region,
        },
        "state": drill.state,
        "outcome": outcome,
        "ticket_ref": drill.ticket_ref,
        "participants": list(drill.participants),
        "planned_start": _iso(drill.planned_start),
        "duration_minutes": drill.duration_minutes,
        "started_at": _iso(drill.started_at),
        "started_by": drill.started_by,
        "ended_at": _iso(drill.ended_at),
        "ended_by": drill.ended_by,
        "abort_reason": drill.abort_reason,
        "drill_seconds": (end - drill.started_at).total_seconds() if drill.started_at else 0.0,
        "excluded_from_uptime": drill.exclude_from_uptime,
        "checks": checks,
        "failures": [c for c in checks if c["status"] == FAIL],
        "follow_ups": list(drill.follow_ups) if drill.state in FINISHED else follow_ups_of(drill.checks),
        "timeline": [
            {"at": e.at.isoformat(), "kind": e.kind, "message": e.message, "actor": e.actor}
            for e in drill.events
        ],
        "generated_at": now.isoformat(),
        "windows": len(drill_windows(session, [drill.outpost_pk], now).get(drill.outpost_pk, [])),
    }


def _cell(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Disconnect drill #{data['id']}: {data['title']}",
        "",
        "- Outpost: {name} (`{outpost_id}`, {region})".format(**data["outpost"]),
        f"- State: {data['state']}; outcome: **{data['outcome']}**",
        f"- Planned: {data['planned_start']} for {data['duration_minutes']} min",
        f"- Started: {data['started_at'] or 'not started'}"
        + (f" by {data['started_by']}" if data["started_by"] else ""),
        f"- Ended: {data['ended_at'] or 'not ended'}"
        + (f" by {data['ended_by']}" if data["ended_by"] else ""),
    ]
    if data["abort_reason"]:
        lines.append(f"- Aborted: {data['abort_reason']}")
    if data["ticket_ref"]:
        lines.append(f"- Ticket: {data['ticket_ref']}")
    lines += [
        f"- Participants: {', '.join(data['participants']) or 'none recorded'}",
        f"- Drill time {'excluded from' if data['excluded_from_uptime'] else 'counted in'} uptime: "
        f"{int(data['drill_seconds'] // 60)} min",
        "",
        "## Checklist",
        "",
        "| Item | Subject | Result | Summary | Checked |",
        "|---|---|---|---|---|",
    ]
    for c in data["checks"]:
        lines.append(
            f"| {_cell(c['label'])} | {_cell(c['subject'])} | {c['status']} | {_cell(c['summary'])} | "
            f"{c['checked_at'] or ''}{' (' + c['confirmed_by'] + ')' if c['confirmed_by'] else ''} |"
        )
    if not data["checks"]:
        lines.append("| (no check ran) | | | | |")
    lines += ["", "## Evidence", ""]
    for c in data["checks"]:
        if c["evidence"]:
            lines.append(f"### {c['label']}: {c['subject']}")
            lines += [f"- {e['at']}: {e['text']}" for e in c["evidence"]]
            lines.append("")
    lines += ["## Failures and follow-ups", ""]
    lines += [f"- {f}" for f in data["follow_ups"]] or ["- none"]
    lines += ["", "## Timeline", ""]
    lines += [f"- {e['at']} {e['kind']} ({e['actor']}): {e['message']}" for e in data["timeline"]]
    lines += ["", f"_Generated {data['generated_at']} by Outpost Lifeline._", ""]
    return "\n".join(lines)
