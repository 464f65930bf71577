"""Liveness and Prometheus metrics: the only routes open without sign-in besides /login."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from app.web.deps import DbSession
from app.web.security import public

router = APIRouter()


@router.get("/healthz", name="health.healthz", dependencies=[Depends(public())])
def healthz(session: DbSession) -> PlainTextResponse:
    session.execute(text("SELECT 1"))
    return PlainTextResponse("ok")
