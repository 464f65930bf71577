"""HTTP routes for disconnect drills: the list and plan form, the live drill page (HTMX refresh while
it runs), start/end/abort/confirm, the report exports, and /api/v1/drills. Check rounds run through
`app.services.drills.runner`, after the request's transaction has ended (they commit on their own).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app import schemas
from app.models import Drill, Outpost
from app.services.audit import Actor, record_audit
from app.services.drills import lifecycle, report, runner
from app.services.drills.vocabulary import ITEMS, RUNNING
from app.services.errors import InvalidInput, ServiceError
from app.settings import Settings
from app.web.deps import AppSettings, DbSession, RowId, end_request_transaction
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.security import Responder, Role, Viewer, actor_of, now_utc
from app.web.templating import redirect_after_post, render

router = APIRouter()


def drill_from_path(drill_id: RowId, db: DbSession) -> Drill:
    return lifecycle.get_drill(db, drill_id)


PathDrill = Annotated[Drill, Depends(drill_from_path)]


def _factory(request: Request) -> sessionmaker[Session]:
    end_request_transaction(request)
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def _round_later(
    tasks: BackgroundTasks, request: Request, settings: Settings, drill_id: int, actor: Actor
) -> None:
    """The first round right after the response (the request's transaction has committed by then)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    tasks.add_task(_safe_round, settings, factory, drill_id, actor)


def _safe_round(settings: Settings, factory: sessionmaker[Session], drill_id: int, actor: Actor) -> None:
    try:
        runner.run_round(settings, factory, drill_id, actor=actor)
    except Exception:  # a background task: logged, never raised into the server
        import logging

        logging.getLogger(__name__).exception("drill %s: check round crashed", drill_id)


def _out(request: Request, session: Session, drill: Drill) -> schemas.DrillOut:
    data = report.report(session, drill, now_utc(request))
    return schemas.DrillOut.model_validate(
        {**data, "url": str(request.url_for("drills.detail", drill_id=drill.id))}
    )


def _context(request: Request, session: Session, drill: Drill, principal: Any) -> dict[str, Any]:
    now = now_utc(request)
    data = report.report(session, drill, now)
    return {
        "drill": drill,
        "report": data,
        "items": ITEMS,
        "now": now,
        "interval": request.app.state.settings.drill_check_interval_seconds,
        "can_run": principal.can(Role.responder),
    }


# ---------------------------------------------------------------- pages


@router.get("/drills", name="drills.index")
def index(request: Request, principal: Viewer, db: DbSession, outpost: str | None = None) -> Response:
    return render(
        request,
        "drills/index.html",
        _index_context(
            request, db, FormState({"outpost_id": outpost or "", "duration_minutes": "60"}), principal
        ),
    )


def _index_context(request: Request, db: Session, form: FormState, principal: Any) -> dict[str, Any]:
    from sqlalchemy import select

    return {
        "drills": lifecycle.list_drills(db),
        "outposts": list(db.scalars(select(Outpost).order_by(Outpost.name))),
        "form": form,
        "items": ITEMS,
        "can_run": principal.can(Role.responder),
        "now": now_utc(request),
    }


@router.post("/drills", name="drills.create")
def create(
    request: Request,
    tasks: BackgroundTasks,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    outpost_id: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    duration_minutes: Annotated[str, Form()] = "60",
    planned_start: Annotated[str, Form()] = "",
    ticket_ref: Annotated[str, Form()] = "",
    participants: Annotated[str, Form()] = "",
    checklist: Annotated[list[str] | None, Form()] = None,
    exclude_from_uptime: Annotated[str, Form()] = "",
    start_now: Annotated[str, Form()] = "",
) -> Response:
    values = {
        "outpost_id": outpost_id,
        "title": title,
        "duration_minutes": duration_minutes,
        "planned_start": planned_start,
        "ticket_ref": ticket_ref,
        "participants": participants,
    }
    actor = actor_of(principal, request)
    now = now_utc(request)
    try:
        if not duration_minutes.strip().isdigit():
            raise InvalidInput("a whole number of minutes", field="duration_minutes")
        start = None
        if planned_start.strip():
            try:
                start = dt.datetime.fromisoformat(planned_start.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput("use ISO 8601, e.g. 2026-12-02T06:00Z", field="planned_start") from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=dt.UTC)
        with db.begin_nested():
            drill = lifecycle.plan_drill(
                db,
                outpost_id=outpost_id,
                title=title,
                planned_start=start,
                duration_minutes=int(duration_minutes),
                ticket_ref=ticket_ref,
                participants=participants.split(","),
                checklist=checklist or None,
                exclude_from_uptime=exclude_from_uptime != "off",
                actor=actor,
                now=now,
            )
            if start_now:
                lifecycle.start_drill(db, drill, actor, now)
    except ServiceError as exc:
        return render(
            request,
            "drills/index.html",
            _index_context(request, db, FormState.refused(values, exc), principal),
            status_code=status_for(exc),
        )
    if drill.state == RUNNING:
        _round_later(tasks, request, settings, drill.id, actor)
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


@router.get("/drills/{drill_id}", name="drills.detail")
def detail(request: Request, principal: Viewer, db: DbSession, drill: PathDrill) -> Response:
    return render(
        request, "drills/detail.html", _context(request, db, drill, principal), partial="drills/_live.html"
    )


def _act(
    request: Request, db: Session, drill: Drill, verb: str, principal: Any, settings: Settings, **kw: Any
) -> Drill:
    actor = actor_of(principal, request)
    now = now_utc(request)
    if verb == "start":
        return lifecycle.start_drill(db, drill, actor, now)
    if verb == "end":
        return lifecycle.end_drill(db, drill, actor, now, valid_days=settings.drill_valid_days)
    return lifecycle.abort_drill(
        db, drill, actor, now, reason=kw.get("reason", ""), valid_days=settings.drill_valid_days
    )


@router.post("/drills/{drill_id}/start", name="drills.start")
def start(
    request: Request,
    tasks: BackgroundTasks,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    drill: PathDrill,
) -> Response:
    _act(request, db, drill, "start", principal, settings)
    _round_later(tasks, request, settings, drill.id, actor_of(principal, request))
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


@router.post("/drills/{drill_id}/end", name="drills.end")
def end(
    request: Request, principal: Responder, db: DbSession, settings: AppSettings, drill: PathDrill
) -> Response:
    _act(request, db, drill, "end", principal, settings)
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


@router.post("/drills/{drill_id}/abort", name="drills.abort")
def abort(
    request: Request,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    drill: PathDrill,
    reason: Annotated[str, Form()] = "",
) -> Response:
    _act(request, db, drill, "abort", principal, settings, reason=reason)
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


@router.post("/drills/{drill_id}/check", name="drills.check")
def check_now(
    request: Request, principal: Responder, db: DbSession, settings: AppSettings, drill: PathDrill
) -> Response:
    """Run a round now (the scheduler runs one every LIFELINE_DRILL_CHECK_INTERVAL_SECONDS)."""
    drill_id = drill.id
    runner.run_round(settings, _factory(request), drill_id, actor=actor_of(principal, request))
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill_id)))


@router.post("/drills/{drill_id}/checks/{check_id}/confirm", name="drills.confirm")
def confirm(
    request: Request,
    principal: Responder,
    db: DbSession,
    drill: PathDrill,
    check_id: RowId,
    outcome: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    if outcome not in ("worked", "failed"):
        raise InvalidInput("choose worked or failed", field="outcome")
    lifecycle.confirm_check(
        db,
        drill,
        check_id,
        ok=outcome == "worked",
        note=note,
        actor=actor_of(principal, request),
        now=now_utc(request),
    )
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


def _export(request: Request, db: Session, drill: Drill, principal: Any, fmt: str) -> Response:
    data = report.report(db, drill, now_utc(request))
    record_audit(
        db,
        actor=actor_of(principal, request),
        action="drill.report",
        target=f"drill:{drill.id}",
        details={"format": fmt, "outcome": data["outcome"]},
    )
    name = f"drill-{drill.id}-{drill.outpost.outpost_id}"
    if fmt == "json":
        return Response(
            json.dumps(data, indent=2),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
        )
    return PlainTextResponse(
        report.markdown(data),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.md"'},
    )


@router.get("/drills/{drill_id}/report.md", name="drills.report_md")
def report_md(request: Request, principal: Viewer, db: DbSession, drill: PathDrill) -> Response:
    return _export(request, db, drill, principal, "markdown")


@router.get("/drills/{drill_id}/report.json", name="drills.report_json")
def report_json(request: Request, principal: Viewer, db: DbSession, drill: PathDrill) -> Response:
    return _export(request, db, drill, principal, "json")


# ---------------------------------------------------------------- JSON API


@router.get("/api/v1/drills", response_model=list[schemas.DrillOut], name="drills.api_list")
def api_list(request: Request, principal: Viewer, db: DbSession) -> list[schemas.DrillOut]:
    return [_out(request, db, d) for d in lifecycle.list_drills(db)]


@router.post("/api/v1/drills", status_code=201, response_model=schemas.DrillOut, name="drills.api_create")
def api_create(
    request: Request,
    tasks: BackgroundTasks,
    body: schemas.DrillCreate,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
) -> schemas.DrillOut:
    actor = actor_of(principal, request)
    now = now_utc(request)
    drill = lifecycle.plan_drill(
        db,
        outpost_id=body.outpost_id,
        title=body.title,
        planned_start=body.planned_start,
        duration_minutes=body.duration_minutes,
        ticket_ref=body.ticket_ref,
        participants=body.participants,
        checklist=body.checklist,
        exclude_from_uptime=body.exclude_from_uptime,
        actor=actor,
        now=now,
    )
    if body.start_now:
        lifecycle.start_drill(db, drill, actor, now)
        _round_later(tasks, request, settings, drill.id, actor)
    return _out(request, db, drill)


@router.get("/api/v1/drills/{drill_id}", response_model=schemas.DrillOut, name="drills.api_get")
def api_get(request: Request, principal: Viewer, db: DbSession, drill: PathDrill) -> schemas.DrillOut:
    return _out(request, db, drill)


@router.post("/api/v1/drills/{drill_id}/start", response_model=schemas.DrillOut, name="drills.api_start")
def api_start(
    request: Request,
    tasks: BackgroundTasks,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    drill: PathDrill,
) -> schemas.DrillOut:
    _act(request, db, drill, "start", principal, settings)
    _round_later(tasks, request, settings, drill.id, actor_of(principal, request))
    return _out(request, db, drill)


@router.post("/api/v1/drills/{drill_id}/end", response_model=schemas.DrillOut, name="drills.api_end")
def api_end(
    request: Request, principal: Responder, db: DbSession, settings: AppSettings, drill: PathDrill
) -> schemas.DrillOut:
    return _out(request, db, _act(request, db, drill, "end", principal, settings))


@router.post("/api/v1/drills/{drill_id}/abort", response_model=schemas.DrillOut, name="drills.api_abort")
def api_abort(
    request: Request,
    body: schemas.DrillAbort,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    drill: PathDrill,
) -> schemas.DrillOut:
    return _out(request, db, _act(request, db, drill, "abort", principal, settings, reason=body.reason))


@router.post("/api/v1/drills/{drill_id}/check", response_model=schemas.DrillOut, name="drills.api_check")
def api_check(
    request: Request, principal: Responder, db: DbSession, settings: AppSettings, drill: PathDrill
) -> schemas.DrillOut:
    drill_id = drill.id
    runner.run_round(settings, _factory(request), drill_id, actor=actor_of(principal, request))
    db.expire_all()
    return _out(request, db, lifecycle.get_drill(db, drill_id))


@router.get("/api/v1/drills/{drill_id}/report", name="drills.api_report")
def api_report(
    request: Request,
    principal: Viewer,
    db: DbSession,
    drill: PathDrill,
    fmt: Annotated[str, Query(alias="format", pattern="^(markdown|json)$")] = "json",
) -> Response:
    return _export(request, db, drill, principal, fmt)
