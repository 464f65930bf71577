"""create_app(): the FastAPI application, its lifespan, routers, static files and error pages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.db import WEB_THREADS, create_db_engine, make_session_factory
from app.db_reader import create_sign_in_reader
from app.services.accounts import hashing
from app.settings import Settings, get_settings
from app.web import (
    access,
    audit,
    credential_policy,
    credentials,
    drills,
    errors,
    fleet,
    health,
    identities,
    navigation,
    notifications,
    security,
    templating,
)
from app.web.accounts import signin, sso, totp, users
from app.web.connectivity import outposts, overview, probes
from app.web.edge import ControlCharacterMiddleware
from app.web.readiness import clusters
from app.web.url_paths import cache_url_paths

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, start_scheduler: bool = False) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url, echo=settings.database_echo)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The web thread pool is the size the connection pool was sized for (app/db.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
        scheduler = None
        if start_scheduler:
            from app.jobs.scheduler import LeaderScheduler

            scheduler = LeaderScheduler(settings, app.state.session_factory)
            scheduler.start()  # SQLite: refuses (SchedulerRefused) when another scheduler holds the file
            app.state.scheduler = scheduler
        # The sign-in lookup on the event loop (app/db_reader.py). Made here, in the loop that
        # serves the requests (its connections belong to that loop), for the requests' database.
        reader = create_sign_in_reader(app.state.session_factory.kw.get("bind"))
        app.state.sign_in_reader = reader
        try:
            yield
        finally:
            app.state.sign_in_reader = None
            if reader is not None:
                await reader.close()
            if scheduler is not None:
                scheduler.shutdown()
            engine.dispose()

    app = FastAPI(
        title="Outpost Lifeline",
        version=__version__,
        summary="Connectivity, emergency access and disconnect readiness for EKS local clusters on Outposts",
        lifespan=lifespan,
        # The schema (/api/openapi.json) and Swagger UI (/api/docs, vendored assets) are served behind
        # sign-in by app/web/accounts/signin.py; FastAPI's own pages load a CDN the CSP forbids.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    hashing.configure(settings.password_hash_concurrency)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (
        health,
        signin,
        sso,
        overview,
        outposts,
        fleet,
        clusters,
        credentials,
        credential_policy,
        access,
        identities,
        users,
        totp,
        audit,
        notifications,
        drills,
    ):
        app.include_router(module.router)
    errors.install(app)
    # Inside the security middleware, so a refusal still carries the security headers.
    app.add_middleware(ControlCharacterMiddleware)
    security.install(app)
    templating.install_globals(
        aws_vantage=overview.vantage_for_template,
        cluster_probes=probes.cluster_probes,
        can_open=navigation.can_open,
        cut_off_now=access.cut_off_for_template,
        cut_off_title=access.title_prefix_for_template,
        cut_off_banner=access.cut_off_banner,
        access_way=access.way_for_template,
    )
    cache_url_paths(app)
    return app
