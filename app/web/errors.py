"""Errors mapped to HTTP once: the service vocabulary, HTTP exceptions and request validation.

JSON for the API (and for clients that ask for it), the error page otherwise. The same refusal
answers the same status on the API and on the page.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.db import describe_unreachable, is_locked, is_unreachable
from app.services.accounts.hashing import HashingBusy
from app.services.errors import (
    FORM,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
)
from app.web.navigation import can_open
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


# Where an error page may send someone, in this order; only the pages their role opens are offered.
CHOICES: tuple[tuple[str, str], ...] = (
    ("/", "Connectivity overview"),
    ("/clusters", "Clusters"),
    ("/credentials", "Emergency access"),
    ("/fleet", "Fleet"),
)


def _resolve_principal(request: Request) -> None:
    """Error pages know who is signed in, also for a path no route serves (no dependency ran)."""
    if hasattr(request.state, "principal_resolved"):
        return
    from app.web.security import current_principal

    session = request.app.state.session_factory()
    try:
        current_principal(request, session)
        session.commit()
    except Exception:
        session.rollback()
        request.state.principal = None
    finally:
        session.close()


def page_choices(request: Request, status_code: int, *, bad_query: bool = False) -> list[tuple[str, str]]:
    """The links an error page offers: for a bad query string, the same page without it; then the
    main pages the caller's role opens (never a link that answers 403)."""
    choices: list[tuple[str, str]] = []
    path = request.url.path
    if bad_query and request.method == "GET" and can_open(request, path):
        choices.append((path, "This page with the default settings"))
    for href, label in CHOICES:
        if href != path and can_open(request, href):
            choices.append((href, label))
    return choices


# `^(json|csv)$`: a Query pattern that is a plain list of choices.
_ALTERNATIVES = re.compile(r"^\^\(([\w.-]+(?:\|[\w.-]+)*)\)\$$")


def _choices_of(error: dict[str, Any]) -> list[str]:
    """The valid values of a parameter, when the error says them: our own errors carry
    `ctx.choices`; a Query pattern like `^(json|csv)$` lists them too."""
    ctx = error.get("ctx") or {}
    if isinstance(ctx.get("choices"), list | tuple):
        return [str(c) for c in ctx["choices"]]
    found = _ALTERNATIVES.match(str(ctx.get("pattern", "")))
    return found.group(1).split("|") if found else []


def plain_message(error: dict[str, Any]) -> str:
    """A validation error in a person's words, naming the parameter: "credential_id must be a
    whole number (got 'abc')" rather than pydantic's "Input should be a valid integer, ..."."""
    name, msg, kind = field_name(error.get("loc", ())), str(error.get("msg", "")), error.get("type", "")
    ctx, got = error.get("ctx") or {}, f" (got {error.get('input')!r})" if "input" in error else ""
    if msg.startswith(name):
        return msg  # our own messages already name the parameter ("outpost_id must be ...")
    choices = _choices_of(error)
    plain = {
        "int_parsing": f"{name} must be a whole number{got}",
        "int_from_float": f"{name} must be a whole number{got}",
        "greater_than_equal": f"{name} must be at least {ctx.get('ge')}{got}",
        "less_than_equal": f"{name} must be at most {ctx.get('le')}{got}",
        "string_too_long": f"{name} must be at most {ctx.get('max_length')} characters long",
        "missing": f"{name} is required",
        "string_pattern_mismatch": f"{name} must be one of {', '.join(choices)}{got}" if choices else "",
    }.get(kind)
    return plain or f"{name}: {msg}"


def valid_links(request: Request, errors: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """For each bad query parameter with a known set of values: links to this page with each value
    in its place (the other parameters kept)."""
    if request.method != "GET":
        return []
    result = []
    for error in errors:
        loc = list(error.get("loc", ()))
        choices = _choices_of(error)
        if len(loc) != 2 or loc[0] != "query" or not choices:
            continue
        param = str(loc[1])
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != param]
        links = [(f"{request.url.path}?{urlencode([*kept, (param, c)])}", c) for c in choices]
        result.append((param, links))
    return result


def _refused_query(request: Request) -> bool:
    """A GET refused as invalid while it carries a query string (a filter that is not a date): the
    page without the query is the choice to offer."""
    return request.method == "GET" and bool(request.url.query)


def field_name(location: list[Any] | tuple[Any, ...]) -> str:
    """A person's name for where bad input was: the parameter, without "query."/"path."/"body."."""
    parts = [str(p) for p in location if p not in ("query", "path", "body", "header", "cookie")]
    return ".".join(parts) if parts else "the request"


def _page(
    request: Request,
    status_code: int,
    problems: list[str],
    headers: dict[str, str] | None,
    *,
    bad_query: bool = False,
    valid: list[tuple[str, list[tuple[str, str]]]] | None = None,
) -> Response:
    _resolve_principal(request)
    return render(
        request,
        "errors/error.html",
        {
            "status_code": status_code,
            "detail": problems[0] if len(problems) == 1 else "",
            "problems": problems if len(problems) > 1 else [],
            "choices": page_choices(request, status_code, bad_query=bad_query),
            "valid": valid or [],
        },
        status_code=status_code,
        headers=headers,
    )


def error_page(
    request: Request,
    status_code: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    *,
    bad_query: bool = False,
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    problems = [detail] if isinstance(detail, str) else [str(d.get("msg", d)) for d in detail]
    return _page(request, status_code, problems, headers, bad_query=bad_query)


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

    @app.exception_handler(HashingBusy)
    async def hashing_busy(request: Request, exc: HashingBusy) -> Response:
        return error_page(request, 429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        bad_query = isinstance(exc, InvalidInput) and _refused_query(request)
        return error_page(request, status_for(exc), api_detail(exc), bad_query=bad_query)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        bad_query = exc.status_code == 422 and _refused_query(request)
        return error_page(
            request, exc.status_code, exc.detail, getattr(exc, "headers", None), bad_query=bad_query
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        if wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        raw = [dict(err) for err in exc.errors()]
        problems = [plain_message(e) for e in raw]
        bad_query = bool(errors) and all(e["loc"][:1] == ["query"] for e in errors)
        return _page(request, 422, problems, None, bad_query=bad_query, valid=valid_links(request, raw))
