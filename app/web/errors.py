"""Errors mapped to HTTP once: the service vocabulary, HTTP exceptions and request validation.

JSON for the API (and for clients that ask for it), the error page otherwise. The same refusal
answers the same status on the API and on the page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.db import describe_unreachable, is_locked, is_unreachable
from app.services.errors import (
    FORM,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)
from app.web.templating import render

log = logging.getLogger(__name__)

# A database that is away: tell clients and proxies to come back, not that the request was wrong.
RETRY_AFTER = {"Retry-After": "5"}

STATUS: dict[type[ServiceError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    Unavailable: 503,
    InvalidInput: 422,
}


def status_for(exc: ServiceError) -> int:
    """The HTTP status of a service refusal (the nearest mapped base class)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def api_detail(exc: ServiceError) -> Any:
    """The JSON `detail` of a refusal: FastAPI's validation shape for invalid input, else the text."""
    if isinstance(exc, InvalidInput):
        return [
            {"loc": ["body"] if field == FORM else ["body", field], "msg": message, "type": "value_error"}
            for field, message in exc.errors.items()
        ]
    return exc.message


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_page(
    request: Request, status_code: int, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    text = detail if isinstance(detail, str) else "; ".join(str(d.get("msg", d)) for d in detail)
    return render(
        request,
        "errors/error.html",
        {"status_code": status_code, "detail": text},
        status_code=status_code,
        headers=headers,
    )


def database_unavailable(request: Request, reason: str) -> Response:
    """503 with the reason: JSON for the API, the "database unreachable" page otherwise."""
    detail = f"The database is unreachable: {reason}"
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=503, headers=RETRY_AFTER)
    return render(request, "errors/database.html", {"detail": reason}, status_code=503, headers=RETRY_AFTER)


def install(app: FastAPI) -> None:
    """Register the handlers on `app` (called by `create_app`)."""

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> Response:
        if is_unreachable(exc):
            log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc.orig)
            return database_unavailable(request, describe_unreachable(exc))
        if is_locked(exc):
            log.error("SQLite stayed locked past the busy wait and retries on %s", request.url.path)
            return error_page(
                request, 503, "The database is busy; try again in a moment.", headers=RETRY_AFTER
            )
        raise exc

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        log.error("no database connection free within the pool timeout on %s", request.url.path)
        return error_page(
            request, 503, "Lifeline is overloaded (no database connection free); try again.", RETRY_AFTER
        )

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return error_page(request, status_for(exc), api_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_page(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        if wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return render(request, "errors/error.html", {"status_code": 422, "detail": detail}, status_code=422)
