"""Errors mapped to HTTP once: the service vocabulary, HTTP exceptions and request validation.

JSON for the API (and for clients that ask for it), the error page otherwise. The same refusal
answers the same status on the API and on the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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


def install(app: FastAPI) -> None:
    """Register the handlers on `app` (called by `create_app`)."""

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
