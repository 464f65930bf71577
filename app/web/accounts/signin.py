"""Sign-in, sign-out and "confirm your password" pages; who-am-I and the OpenAPI schema for the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from app.schemas import MeOut
from app.services.accounts.sessions import confirm_reauth, end_session, start_session
from app.services.accounts.users import authenticate, confirm_password
from app.services.audit import record_audit
from app.web.deps import AppSettings, DbSession
from app.web.security import (
    SESSION_COOKIE,
    Viewer,
    actor_of,
    backoff_policy,
    clear_session_cookie,
    client_info,
    current_principal,
    now_utc,
    public,
    safe_next,
    session_policy,
    set_session_cookie,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()

SIGN_IN_FAILED = "Incorrect username or password."


def _backoff_message(seconds: float) -> str:
    return f"Too many failed attempts. Wait {max(1, round(seconds))} s before trying again."


@router.get("/login", name="auth.login", dependencies=[Depends(public())])
def login_page(request: Request, db: DbSession, next: str = "/", expired: bool = False) -> Response:  # noqa: A002
    if current_principal(request, db) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "Your session ended; sign in again." if expired else None
    return render(request, "accounts/login.html", {"next": safe_next(next), "notice": notice, "username": ""})


@router.post("/login", name="auth.login_submit", dependencies=[Depends(public())])
def login_submit(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    now = now_utc(request)
    client = client_info(request)
    result = authenticate(
        db, username=username, password=password, client=client, policy=backoff_policy(settings), now=now
    )
    context: dict[str, Any] = {"next": safe_next(next), "username": username, "notice": None}
    if result.retry_after:
        context["error"] = _backoff_message(result.retry_after)
        return render(
            request,
            "accounts/login.html",
            context,
            status_code=429,
            headers={"Retry-After": str(max(1, round(result.retry_after)))},
        )
    if result.user is None:
        context["error"] = SIGN_IN_FAILED
        return render(request, "accounts/login.html", context, status_code=401)
    # A fresh token on every sign-in (no session fixation); the old session, if any, ends.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        end_session(db, old)
    raw, _ = start_session(db, result.user, client=client, policy=session_policy(settings), now=now)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, raw)
    return response


@router.post("/logout", name="auth.logout")
def logout(request: Request, db: DbSession, principal: Viewer) -> Response:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        end_session(db, raw)
    record_audit(
        db,
        actor=actor_of(principal, request),
        action="auth.sign_out",
        target=f"user:{principal.username}",
        now=now_utc(request),
    )
    target = "/login?signed_out=1"
    response = redirect_after_post(request, target)
    clear_session_cookie(request, response)
    return response


@router.get("/reauth", name="auth.reauth")
def reauth_page(
    request: Request,
    principal: Viewer,
    next: str = "/",  # noqa: A002
) -> Response:
    return render(request, "accounts/reauth.html", {"next": safe_next(next), "principal": principal})


@router.post("/reauth", name="auth.reauth_submit")
def reauth_submit(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Viewer,
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    web_session = request.state.web_session
    retry_after, ok = confirm_password(
        db,
        web_session.user,
        password=password,
        client=client_info(request),
        policy=backoff_policy(settings),
        now=now_utc(request),
    )
    context = {"next": safe_next(next), "principal": principal}
    if retry_after:
        context["error"] = _backoff_message(retry_after)
        return render(request, "accounts/reauth.html", context, status_code=429)
    if not ok:
        context["error"] = "That is not your password."
        return render(request, "accounts/reauth.html", context, status_code=401)
    confirm_reauth(db, web_session, now=now_utc(request))
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/api/v1/me", name="auth.api_me", response_model=MeOut, tags=["accounts"])
def api_me(principal: Viewer) -> MeOut:
    """Who the token or session belongs to, and its role."""
    return MeOut(username=principal.username, role=principal.role.value, via_token=principal.via_token)


@router.get("/api/openapi.json", name="auth.openapi", include_in_schema=False)
def openapi_schema(request: Request, _principal: Viewer) -> JSONResponse:
    """The API's OpenAPI schema (signed-in users and tokens only, like everything else)."""
    return JSONResponse(request.app.openapi())
