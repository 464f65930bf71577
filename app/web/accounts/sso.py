"""Single sign-on routes (issue 18): start at the IdP, come back to /sso/callback, fresh IdP re-auth.

The state cookie (`lifeline_sso`) ties the reply to the browser that started the sign-in; the
state row in the database makes it usable once. Every refusal is a page saying what failed, with
the transaction committed (so a used state stays used and the refusal stays in the audit trail).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.integrations.vault import Vault, vault_or_none
from app.models.account import WebSession
from app.services.accounts.breakglass import set_break_glass
from app.services.accounts.sessions import confirm_reauth, end_session, start_session
from app.services.accounts.sso import (
    IdpUnreachable,
    OidcProvider,
    SsoRefused,
    check_reauth_claims,
    open_id_token,
    seal_id_token,
    sign_in_with_claims,
)
from app.services.accounts.users import get_user_or_none
from app.services.errors import NotFound, ServiceError
from app.settings import Settings
from app.web.deps import AppSettings, DbSession
from app.web.errors import status_for
from app.web.security import (
    SESSION_COOKIE,
    RecentAdmin,
    Viewer,
    actor_of,
    client_info,
    cookie_secure,
    current_principal,
    now_utc,
    public,
    safe_next,
    session_policy,
    set_session_cookie,
    web_session_of,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()

STATE_COOKIE = "lifeline_sso"


def provider_for(app: FastAPI) -> OidcProvider | None:
    """The app's one OIDC provider (its caches live as long as the app), or None when SSO is off."""
    from app.services.accounts.sso import OidcConfig

    if not hasattr(app.state, "oidc_provider"):
        config = OidcConfig.from_settings(app.state.settings)
        app.state.oidc_provider = OidcProvider(config) if config is not None else None
    provider: OidcProvider | None = app.state.oidc_provider
    return provider


def vault_for(settings: Settings) -> Vault | None:
    secret = settings.data_key.get_secret_value() if settings.data_key else None
    return vault_or_none(secret, settings.data_key_file)


def _provider(request: Request) -> OidcProvider:
    provider = provider_for(request.app)
    if provider is None:
        raise NotFound("Single sign-on is not configured (LIFELINE_OIDC_ISSUER is empty).")
    return provider


def _refused(request: Request, exc: ServiceError, *, next_path: str = "/") -> Response:
    unreachable = isinstance(exc, IdpUnreachable)
    response = render(
        request,
        "accounts/sso_refused.html",
        {"message": exc.message, "unreachable": unreachable, "next": next_path},
        status_code=status_for(exc),
    )
    response.delete_cookie(STATE_COOKIE, path="/sso/", httponly=True, samesite="lax")
    return response


def _to_idp(request: Request, url: str, state: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=600,
        httponly=True,
        samesite="lax",  # the IdP's redirect back is a top-level GET: lax cookies come along
        secure=cookie_secure(request),
        path="/sso/",
    )
    return response


@router.get("/sso/start", name="sso.start", dependencies=[Depends(public())])
def sso_start(request: Request, db: DbSession, next: str = "/") -> Response:  # noqa: A002
    provider = _provider(request)
    try:
        url, state = provider.begin(db, next_path=safe_next(next), now=now_utc(request))
    except ServiceError as exc:
        return _refused(request, exc, next_path=safe_next(next))
    return _to_idp(request, url, state)


@router.get("/sso/reauth", name="sso.reauth")
def sso_reauth(request: Request, db: DbSession, principal: Viewer, next: str = "/") -> Response:  # noqa: A002
    """Re-authentication for SSO users: a fresh sign-in at the IdP (max_age=0, prompt=login)."""
    provider = _provider(request)
    try:
        url, state = provider.begin(
            db,
            next_path=safe_next(next),
            purpose="reauth",
            user_id=principal.user_id,
            max_age=0,
            now=now_utc(request),
        )
    except ServiceError as exc:
        return _refused(request, exc, next_path=safe_next(next))
    return _to_idp(request, url, state)


@router.get("/sso/callback", name="sso.callback", dependencies=[Depends(public())])
def sso_callback(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    provider = _provider(request)
    now = now_utc(request)
    next_path = "/"
    try:
        login = provider.take_login(db, state=state, cookie_state=request.cookies.get(STATE_COOKIE), now=now)
        next_path = safe_next(login.next_path)
        if error:
            raise SsoRefused(
                f"The identity provider refused the sign-in: {error_description or error}."[:300]
            )
        if not code:
            raise SsoRefused("The identity provider sent no sign-in code.")
        claims, id_token = provider.redeem_tokens(code=code, login=login, now=now)
        if login.purpose == "reauth":
            principal = current_principal(request, db)
            web_session = web_session_of(request, db)
            if principal is None or web_session is None or principal.user_id != login.user_id:
                raise SsoRefused("Sign in to Lifeline first, then confirm again.")
            check_reauth_claims(web_session.user, provider.config, claims, asked_at=login.created_at, now=now)
            confirm_reauth(db, web_session, now=now)
            _keep_id_token(settings, web_session, id_token)
            response: Response = RedirectResponse(next_path, status_code=303)
        else:
            user = sign_in_with_claims(db, provider.config, claims, client=client_info(request), now=now)
            old = request.cookies.get(SESSION_COOKIE)
            if old:
                end_session(db, old)
            raw, new_session = start_session(
                db, user, client=client_info(request), policy=session_policy(settings), now=now
            )
            _keep_id_token(settings, new_session, id_token)
            response = RedirectResponse(next_path, status_code=303)
            set_session_cookie(request, response, raw)
    except ServiceError as exc:
        return _refused(request, exc, next_path=next_path)
    response.delete_cookie(STATE_COOKIE, path="/sso/", httponly=True, samesite="lax")
    return response


def _keep_id_token(settings: Settings, web_session: WebSession, id_token: str) -> None:
    """Kept sealed on the session row for `id_token_hint` at sign-out (RP-initiated logout)."""
    web_session.id_token_sealed = seal_id_token(
        vault_for(settings), id_token, session_token_hash=web_session.token_hash
    )


def idp_logout_url(request: Request, web_session: WebSession | None) -> str | None:
    """Where sign-out sends an SSO user: the IdP's end-session endpoint (with `id_token_hint` and
    `post_logout_redirect_uri` back to /login), or None when SSO is off, the session is local, the IdP
    advertises no end_session_endpoint or does not answer now (then Lifeline's sign-out is enough)."""
    provider = provider_for(request.app)
    if provider is None or web_session is None or not web_session.user.is_sso:
        return None
    if not provider.reachable():
        return None
    settings: Settings = request.app.state.settings
    hint = open_id_token(
        vault_for(settings), web_session.id_token_sealed, session_token_hash=web_session.token_hash
    )
    return provider.end_session_url(settings.base_url.rstrip("/") + "/login?signed_out=1", id_token_hint=hint)


@router.post("/users/{user_id}/break-glass", name="sso.set_break_glass")
def users_set_break_glass(
    request: Request,
    db: DbSession,
    user_id: int,
    principal: RecentAdmin,
    allowed: Annotated[str, Form(max_length=1)] = "1",
) -> Response:
    """Admins mark which local accounts may sign in with a password while SSO is configured."""
    user = get_user_or_none(db, user_id)
    if user is None:
        raise NotFound(f"There is no account #{user_id}.")
    set_break_glass(db, user, allowed == "1", actor=actor_of(principal, request), now=now_utc(request))
    return redirect_after_post(request, f"/users/{user.id}?done=saved")
