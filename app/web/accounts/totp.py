"""TOTP enrolment on /account/totp, the admins' TOTP reset and policy switch (issue 18).

The QR code is drawn on the server by segno as an inline SVG (no image service, nothing a strict
CSP would block); the secret is shown beside it for manual entry. Nothing is active until a code
from the app confirms it. Turning TOTP off takes a current code or the password.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import segno
from fastapi import APIRouter, Form, Request
from markupsafe import Markup
from starlette.responses import Response

from app.services.accounts import totp
from app.services.accounts.policies import break_glass_totp, must_enrol_totp, set_break_glass_totp
from app.services.accounts.users import confirm_password, get_user_or_none
from app.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from app.web.accounts.sso import vault_for
from app.web.deps import AppSettings, DbSession, end_request_transaction
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.security import (
    Admin,
    RecentAdmin,
    RecentViewer,
    Viewer,
    actor_of,
    backoff_policy,
    client_info,
    now_utc,
    safe_next,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()


def qr_svg(uri: str) -> Markup:
    """The otpauth:// URI as an inline SVG (segno escapes nothing we put in; the SVG is its own)."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=4, dark="#000", light="#fff", border=2, title="TOTP QR code")
    return Markup(svg)  # noqa: S704 (segno's own markup, no user text except the escaped title)


def _user(db: DbSession, principal: Any) -> Any:
    user = get_user_or_none(db, principal.user_id)
    if user is None:
        raise NotFound("Your account is gone.")
    return user


def _page(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Any,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    user = _user(db, principal)
    vault = vault_for(settings)
    uri = totp.pending_uri(user, vault=vault) if not user.totp_enabled else None
    secret = parse_qs(urlsplit(uri).query)["secret"][0] if uri else None
    context = {
        "user": user,
        "has_key": vault is not None,
        "pending": uri is not None,
        "qr": qr_svg(uri) if uri else None,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) if secret else None,
        "required": must_enrol_totp(
            db, user, sso_on=bool(settings.oidc_issuer), setting=settings.break_glass_totp_required
        ),
        "next": safe_next(request.query_params.get("next")),
        "f": form or FormState(),
        "flash": request.query_params.get("done"),
    }
    return render(request, "accounts/totp.html", context, status_code=status_code)


@router.get("/account/totp", name="totp.page")
def totp_page(request: Request, db: DbSession, settings: AppSettings, principal: Viewer) -> Response:
    return _page(request, db, settings, principal)


@router.post("/account/totp/start", name="totp.start")
def totp_start(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentViewer,
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    user = _user(db, principal)
    try:
        if user.totp_enabled:
            raise Conflict("TOTP is already on; turn it off first to set up a new authenticator.")
        totp.start_enrolment(db, user, vault=vault_for(settings))
    except ServiceError as exc:
        return _page(
            request, db, settings, principal, form=FormState.refused({}, exc), status_code=status_for(exc)
        )
    return redirect_after_post(request, "/account/totp?next=" + safe_next(next))


@router.post("/account/totp/confirm", name="totp.confirm")
def totp_confirm(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Viewer,
    code: Annotated[str, Form(max_length=16)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    user = _user(db, principal)
    try:
        totp.confirm_enrolment(
            db,
            user,
            code,
            vault=vault_for(settings),
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        form = FormState.refused({"code": code}, exc)
        return _page(request, db, settings, principal, form=form, status_code=status_for(exc))
    target = safe_next(next)
    if target == "/":
        target = "/account/totp?done=enabled"
    return redirect_after_post(request, target)


@router.post("/account/totp/disable", name="totp.disable")
def totp_disable(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Viewer,
    code: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    user = _user(db, principal)
    now = now_utc(request)
    try:
        if not user.totp_enabled and user.totp_secret_sealed is None:
            raise Conflict("TOTP is not set up.")
        if _required_for(db, settings, user) and user.totp_enabled:
            raise Conflict(
                "Break-glass admins must use TOTP (an admin turned it on on the Sign-in policy page); "
                "it cannot be turned off. An admin can reset it if the authenticator is lost."
            )
        proven = False
        if code.strip() and user.totp_enabled:
            proven = totp.check_code(db, user, code, vault=vault_for(settings), now=now)
        elif password and user.password_hash is not None:
            # As for every password check: the attempt is counted in its own transaction and the
            # hash runs with no database connection held.
            end_request_transaction(request)
            retry_after, proven = confirm_password(
                db,
                user,
                factory=request.app.state.session_factory,
                password=password,
                client=client_info(request),
                policy=backoff_policy(settings),
                now=now,
            )
            if retry_after:
                raise InvalidInput(
                    f"Too many failed attempts. Wait {max(1, round(retry_after))} s.", field="password"
                )
        elif not user.totp_enabled:
            proven = True  # a set-up never confirmed: nothing to protect yet
        if not proven:
            raise InvalidInput(
                "Give a current code from the authenticator app, or your password.", field="code"
            )
        totp.disable(db, user, actor=actor_of(principal, request), now=now)
    except ServiceError as exc:
        return _page(
            request, db, settings, principal, form=FormState.refused({}, exc), status_code=status_for(exc)
        )
    return redirect_after_post(request, "/account/totp?done=disabled")


def _required_for(db: DbSession, settings: AppSettings, user: Any) -> bool:
    """TOTP is mandatory for this person (a break-glass admin while the policy is on and SSO is)."""
    if not (user.break_glass and user.role == "admin" and bool(settings.oidc_issuer)):
        return False
    return break_glass_totp(db, setting=settings.break_glass_totp_required).enabled


@router.post("/users/{user_id}/totp/reset", name="totp.admin_reset")
def totp_admin_reset(request: Request, db: DbSession, user_id: int, principal: RecentAdmin) -> Response:
    """Recovery: an admin removes another person's TOTP (lost phone); they set it up again (audited)."""
    user = get_user_or_none(db, user_id)
    if user is None:
        raise NotFound(f"There is no account #{user_id}.")
    totp.reset_by_admin(db, user, actor=actor_of(principal, request), now=now_utc(request))
    return redirect_after_post(request, f"/users/{user.id}?done=saved")


@router.get("/sign-in-policy", name="policies.page")
def policies_page(request: Request, db: DbSession, settings: AppSettings, _principal: Admin) -> Response:
    return _policies(request, db, settings)


def _policies(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    state = break_glass_totp(db, setting=settings.break_glass_totp_required)
    context = {
        "totp_policy": state,
        "sso_on": bool(settings.oidc_issuer),
        "f": form or FormState(),
        "flash": request.query_params.get("done"),
    }
    return render(request, "accounts/policies.html", context, status_code=status_code)


@router.post("/sign-in-policy/break-glass-totp", name="policies.break_glass_totp")
def policies_break_glass_totp(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentAdmin,
    enabled: Annotated[str, Form(max_length=1)] = "1",
) -> Response:
    try:
        set_break_glass_totp(
            db,
            enabled == "1",
            setting=settings.break_glass_totp_required,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        return _policies(request, db, settings, form=FormState.refused({}, exc), status_code=status_for(exc))
    return redirect_after_post(request, "/sign-in-policy?done=saved")
