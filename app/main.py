"""create_app(): the FastAPI application, its lifespan, routers, static files and error pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import __version__
from app.db import create_db_engine, make_session_factory
from app.settings import Settings, get_settings
from app.web import (
    audit,
    auth,
    clusters,
    credentials,
    demo,
    fleet,
    health,
    outposts,
    overview,
    security,
    users,
)
from app.web.templating import render

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, start_scheduler: bool = False) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url, echo=settings.database_echo)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        if start_scheduler:
            from app.jobs.scheduler import build_scheduler

            scheduler = build_scheduler(settings, app.state.session_factory)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            engine.dispose()

    app = FastAPI(
        title="Outpost Lifeline",
        version=__version__,
        summary="Connectivity, emergency access and disconnect readiness for EKS local clusters on Outposts",
        lifespan=lifespan,
        # The schema is served at /api/openapi.json behind sign-in (app/web/auth.py); no Swagger UI:
        # it loads scripts from a CDN, which the CSP forbids and an offline site cannot reach.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (health, auth, overview, outposts, fleet, clusters, credentials, users, audit, demo):
        app.include_router(module.router)
    _install_error_handlers(app)
    security.install(app)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
        return render(
            request,
            "errors/error.html",
            {"status_code": exc.status_code, "detail": exc.detail},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        if _wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return render(request, "errors/error.html", {"status_code": 422, "detail": detail}, status_code=422)
