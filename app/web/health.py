"""Liveness and Prometheus metrics: the only routes open without sign-in besides /login.

/metrics needs `Authorization: Bearer $LIFELINE_METRICS_TOKEN` once that setting is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.metrics import render_metrics
from app.web.deps import DbSession
from app.web.security import metrics_access, public

router = APIRouter()


@router.get("/healthz", name="health.healthz", dependencies=[Depends(public())])
def healthz(session: DbSession) -> PlainTextResponse:
    session.execute(text("SELECT 1"))
    return PlainTextResponse("ok")


@router.get("/metrics", name="health.metrics", dependencies=[Depends(metrics_access())])
def metrics(session: DbSession) -> Response:
    """Prometheus text format; Outpost states are read from the database at scrape time, so every
    web replica answers the same (see app/metrics.py for the metric names)."""
    return Response(render_metrics(session), media_type=CONTENT_TYPE_LATEST)
