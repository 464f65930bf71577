"""Sign-in, sign-out and "confirm your password" pages; who-am-I and the OpenAPI schema for the API."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from app.schemas import MeOut
from app.services.accounts import totp
from app.services.accounts.breakglass import gate_local_sign_in
from app.services.accounts.policies import break_glass_totp, must_enrol_totp
from app.services.accounts.sessions import confirm_reauth, end_session, start_session
from app.services.accounts.users import authenticate, confirm_password
from app.services.audit import record_audit
from app.web.accounts.sso import idp_logout_url, provider_for, vault_for
from app.web.deps import AppSettings, DbSession, end_request_transaction
from app.web.security import (
    SESSION_COOKIE,
    ReauthRequired,
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
    signed_in_of,
    web_session_of,
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
    # No form that cannot work: with the database away this raises, and the handler in
    # app/web/errors.py answers 503 with the "database unreachable" page like every other page.
    db.execute(select(1))
    notice = "Your session ended; sign in again." if expired else None
    return render(request, "accounts/login.html", _login_context(request, next) | {"notice": notice})


def _login_context(request: Request, next_path: str, **extra: Any) -> dict[str, Any]:
    """SSO first when configured, with a plain word when the IdP does not answer (issue 18)."""
    provider = provider_for(request.app)
    context: dict[str, Any] = {"next": safe_next(next_path), "username": "", "notice": None}
    context["sso"] = provider is not None
    context["sso_unreachable"] = provider is not None and not provider.reachable()
    return context | extra


@router.post("/login", name="auth.login_submit", dependencies=[Depends(public())])
def login_submit(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    now = now_utc(request)
    client = client_info(request)
    result = authenticate(
        db,
        factory=request.app.state.session_factory,
        username=username,
        password=password,
        client=client,
        policy=backoff_policy(settings),
        now=now,
    )
    context = _login_context(request, next, username=username)
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
    refusal = gate_local_sign_in(
        db,
        result.user,
        code=code,
        sso_on=context["sso"],
        totp_required=break_glass_totp(db, setting=settings.break_glass_totp_required).enabled,
        vault=vault_for(settings),
        client=client,
        policy=backoff_policy(settings),
        now=now,
    )
    if refusal is not None:
        context["error"] = refusal
        context["ask_code"] = result.user.totp_enabled
        return render(request, "accounts/login.html", context, status_code=401)
    # A fresh token on every sign-in (no session fixation); the old session, if any, ends.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        end_session(db, old)
    raw, _ = start_session(db, result.user, client=client, policy=session_policy(settings), now=now)
    response = RedirectResponse(_after_sign_in(db, settings, result.user, next), status_code=303)
    set_session_cookie(request, response, raw)
    return response


def _after_sign_in(db: DbSession, settings: AppSettings, user: Any, next_path: str) -> str:
    """Where a password sign-in lands: TOTP enrolment first when policy requires it (issue 18)."""
    target = safe_next(next_path)
    if must_enrol_totp(
        db, user, sso_on=bool(settings.oidc_issuer), setting=settings.break_glass_totp_required
    ):
        return "/account/totp?" + urlencode({"next": target, "required": "1"})
    return target


@router.post("/logout", name="auth.logout")
def logout(request: Request, db: DbSession, principal: Viewer) -> Response:
    # Read before the row goes: an SSO session's ID token is the IdP's `id_token_hint`.
    idp_url = idp_logout_url(request, web_session_of(request, db))
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        end_session(db, raw)
    record_audit(
        db,
        actor=actor_of(principal, request),
        action="auth.sign_out",
        target=f"user:{principal.username}",
        details={"idp_logout": True} if idp_url else None,
        now=now_utc(request),
    )
    response = redirect_after_post(request, idp_url or "/login?signed_out=1")
    clear_session_cookie(request, response)
    return response


@router.get("/reauth", name="auth.reauth")
def reauth_page(
    request: Request,
    principal: Viewer,
    next: str = "/",  # noqa: A002
) -> Response:
    return render(request, "accounts/reauth.html", _reauth_context(request, next, principal))


def _reauth_context(request: Request, next_path: str, principal: Any) -> dict[str, Any]:
    signed_in = signed_in_of(request)
    return {
        "next": safe_next(next_path),
        "principal": principal,
        "sso_user": signed_in is not None and signed_in.is_sso,
        "totp": signed_in is not None and signed_in.totp_enabled,
    }


@router.post("/reauth", name="auth.reauth_submit")
def reauth_submit(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Viewer,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    web_session = web_session_of(request, db)
    if web_session is None:
        raise ReauthRequired(safe_next(next))
    if web_session.user.is_sso:
        # SSO accounts have no password: the TOTP code (or a fresh IdP sign-in at /sso/reauth).
        ok_code = web_session.user.totp_enabled and totp.check_code(
            db, web_session.user, code, vault=vault_for(settings), now=now_utc(request)
        )
        if not ok_code:
            context = _reauth_context(request, next, principal) | {"error": "That code is not valid."}
            return render(request, "accounts/reauth.html", context, status_code=401)
        confirm_reauth(db, web_session, now=now_utc(request))
        return RedirectResponse(safe_next(next), status_code=303)
    # The request's transaction ends first: the attempt is counted in a transaction of its own, and
    # the password hash runs with no database connection held.
    end_request_transaction(request)
    retry_after, ok = confirm_password(
        db,
        web_session.user,
        factory=request.app.state.session_factory,
        password=password,
        client=client_info(request),
        policy=backoff_policy(settings),
        now=now_utc(request),
    )
    context = _reauth_context(request, next, principal)
    if retry_after:
        context["error"] = _backoff_message(retry_after)
        return render(
            request,
            "accounts/reauth.html",
            context,
            status_code=429,
            headers={"Retry-After": str(max(1, round(retry_after)))},
        )
    if not ok:
        context["error"] = "That is not your password."
        return render(request, "accounts/reauth.html", context, status_code=401)
    confirm_reauth(db, web_session, now=now_utc(request))
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/api/v1/me", name="auth.api_me", response_model=MeOut, tags=["accounts"])
def api_me(principal: Viewer) -> MeOut:
    """Who the token or session belongs to, and its role."""
    return MeOut(username=principal.username, role=principal.role.value, via_token=principal.via_token)


# The vendored Swagger UI (static/js/vendor/swagger-ui-<version>/, from npm's swagger-ui-dist).
SWAGGER_UI_VERSION = "5.32.0"


@router.get("/api/openapi.json", name="auth.openapi", include_in_schema=False)
def openapi_schema(request: Request, _principal: Viewer) -> JSONResponse:
    """The API's OpenAPI schema (signed-in users and tokens only, like everything else)."""
    schema = request.app.openapi()
    # How scripts authenticate: an API token as a Bearer header (the browser's session works too).
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["apiToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (Account → API tokens, or `lifeline tokens create`).",
    }
    schema.setdefault("security", [{"apiToken": []}])
    return JSONResponse(schema)


@router.get("/api/docs", name="auth.api_docs", include_in_schema=False)
def api_docs(request: Request, _principal: Viewer) -> Response:
    """Interactive API docs: Swagger UI served from /static (no CDN), under the dashboard's CSP."""
    return render(request, "api/docs.html", {"swagger_ui_version": SWAGGER_UI_VERSION})
