"""Liveness and Prometheus metrics: the only routes open without sign-in besides /login.

/metrics needs `Authorization: Bearer $LIFELINE_METRICS_TOKEN` once that setting is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import describe_unreachable
from app.jobs.leader import LeaderInfo, current_leader
from app.metrics import render_metrics
from app.web.deps import DbSession
from app.web.security import metrics_access, public

router = APIRouter()


def _this_process(request: Request) -> str:
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        return "no scheduler"
    return "leader" if scheduler.leading else "standby"


def _leader(request: Request, session: DbSession) -> LeaderInfo:
    return current_leader(request.app.state.engine, session.connection())


@router.get("/healthz", name="health.healthz", dependencies=[Depends(public())])
def healthz(request: Request, session: DbSession) -> PlainTextResponse:
    """Readiness an orchestrator can use: 200 "ok" when the database answers, else 503 with why.
    The other lines say who runs the scheduled jobs."""
    try:
        session.execute(text("SELECT 1"))
        leader = _leader(request, session)
    except SQLAlchemyError as exc:
        session.rollback()
        return PlainTextResponse(
            f"database unreachable: {describe_unreachable(exc)}\n",
            status_code=503,
            headers={"Retry-After": "5"},
        )
    lines = [
        "ok",
        f"database: {request.app.state.engine.dialect.name}",
        f"scheduler leader: {leader.holder or 'none'} ({leader.mechanism})",
        f"this process: {_this_process(request)}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n")


@router.get("/metrics", name="health.metrics", dependencies=[Depends(metrics_access())])
def metrics(request: Request, session: DbSession) -> Response:
    """Prometheus text format; Outpost states are read from the database at scrape time, so every
    web replica answers the same (see app/metrics.py for the metric names), plus who leads the
    scheduler (`lifeline_scheduler_leader_info`) and whether this process does."""
    leader = _leader(request, session)
    holder = (leader.holder or "").replace("\\", "\\\\").replace('"', '\\"')
    extra = (
        "# HELP lifeline_scheduler_leader_info The process that runs the scheduled jobs (none: nobody).\n"
        "# TYPE lifeline_scheduler_leader_info gauge\n"
        f'lifeline_scheduler_leader_info{{holder="{holder or "none"}",election="{leader.mechanism}"}} '
        f"{1 if leader.holder else 0}\n"
        "# HELP lifeline_scheduler_leading 1 when this process runs the scheduled jobs.\n"
        "# TYPE lifeline_scheduler_leading gauge\n"
        f"lifeline_scheduler_leading {1 if _this_process(request) == 'leader' else 0}\n"
    )
    settings = request.app.state.settings
    # No token configured: anyone may scrape, so only aggregates unless LIFELINE_METRICS_PUBLIC=true.
    aggregate = settings.metrics_token is None and not settings.metrics_public
    body = render_metrics(session, aggregate_only=aggregate)
    return Response(body + extra.encode(), media_type=CONTENT_TYPE_LATEST)
