"""Account pages: /users for admins (create, role, disable, reset password) and /account for everyone
(own password, own API tokens). Every change needs a recent "confirm your password" and is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.models.account import ApiToken, User
from app.schemas import TokenOut, UserOut
from app.services.accounts.tokens import (
    create_token,
    get_token_or_none,
    list_tokens,
    revoke_token,
    token_state,
)
from app.services.accounts.users import (
    ROLES,
    change_own_password,
    create_user,
    get_user_or_none,
    is_demotion,
    list_users,
    reset_password,
    set_disabled,
    set_role,
)
from app.services.credentials import runs
from app.services.errors import FORM, InvalidInput, NotFound, ServiceError
from app.web.deps import AppSettings, DbSession, RowId, end_request_transaction
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.security import (
    Admin,
    Principal,
    RecentAdmin,
    RecentViewer,
    Role,
    Viewer,
    actor_of,
    backoff_policy,
    client_info,
    now_utc,
    recent_auth,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()


def _user_or_404(db: DbSession, user_id: int) -> User:
    user = get_user_or_none(db, user_id)
    if user is None:
        raise NotFound(f"No account with id {user_id}.")
    return user


# ---------------------------------------------------------------- /users (admins)


def _users_page(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "users": list_users(db),
        "roles": ROLES,
        "f": form or FormState({"username": "", "role": "viewer"}),
        "recent_auth": recent_auth(request),
        "flash": request.query_params.get("done"),
    }
    return render(
        request, "accounts/users.html", context, partial="accounts/_users_table.html", status_code=status_code
    )


@router.get("/users", name="users.index")
def users_index(request: Request, db: DbSession, settings: AppSettings, _principal: Admin) -> Response:
    return _users_page(request, db, settings)


@router.post("/users", name="users.create")
def users_create(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentAdmin,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "viewer",
    password: Annotated[str, Form(max_length=1024)] = "",
    password_confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    values = {"username": username, "role": role}
    try:
        if password != password_confirm:
            raise InvalidInput("The passwords differ.", field="password_confirm")
        create_user(
            db,
            username=username,
            password=password,
            role=role,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        form = FormState.refused(values, exc)
        return _users_page(request, db, settings, form=form, status_code=status_for(exc))
    return redirect_after_post(request, f"/users?done=created+{username.strip()}")


@router.get("/users/{user_id}", name="users.detail")
def users_detail(
    request: Request, db: DbSession, settings: AppSettings, user_id: RowId, _principal: Admin
) -> Response:
    user = _user_or_404(db, user_id)
    return _user_detail(request, db, settings, user)


def _user_detail(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user: User,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    now = now_utc(request)
    tokens = [(token, token_state(token, now)) for token in list_tokens(db, user_id=user.id)]
    context = {
        "user": user,
        "roles": ROLES,
        "tokens": tokens,
        "sessions": sorted(user.sessions, key=lambda s: s.last_seen_at, reverse=True),
        "recent_auth": recent_auth(request),
        "f": form or FormState(),
        "flash": request.query_params.get("done"),
    }
    return render(request, "accounts/user.html", context, status_code=status_code)


def _change(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user: User,
    action: Any,
    *,
    offboard: Callable[[], bool] | None = None,
    principal: Principal | None = None,
) -> Response:
    try:
        action()
    except ServiceError as exc:
        # One form per panel, and each shows its refusal at the top of the page.
        form = FormState(errors={FORM: exc.message})
        return _user_detail(request, db, settings, user, form=form, status_code=status_for(exc))
    done = "saved"
    if offboard is not None and principal is not None and offboard():
        # The change is committed first: the revocations run in sessions of their own.
        end_request_transaction(request)
        results = runs.revoke_for_user(
            settings,
            request.app.state.session_factory,
            user.id,
            actor_of(principal, request),
            reason="account disabled" if user.disabled else f"role now {user.role}",
        )
        revoked = sum(1 for _, outcome in results if outcome == "revoked")
        done = f"saved-revoked-{revoked}-of-{len(results)}"
    return redirect_after_post(request, f"/users/{user.id}?done={done}")


@router.post("/users/{user_id}/role", name="users.set_role")
def users_set_role(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user_id: RowId,
    principal: RecentAdmin,
    role: Annotated[str, Form(max_length=16)] = "",
    keep_credentials: Annotated[bool, Form()] = False,
) -> Response:
    user = _user_or_404(db, user_id)
    before = user.role
    return _change(
        request,
        db,
        settings,
        user,
        lambda: set_role(db, user, role=role, actor=actor_of(principal, request), now=now_utc(request)),
        offboard=lambda: not keep_credentials and is_demotion(before, user.role),
        principal=principal,
    )


def _set_disabled(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user_id: int,
    principal: Principal,
    disabled: bool,
    *,
    revoke: bool = False,
) -> Response:
    user = _user_or_404(db, user_id)
    actor = actor_of(principal, request)
    return _change(
        request,
        db,
        settings,
        user,
        lambda: set_disabled(db, user, disabled=disabled, actor=actor, now=now_utc(request)),
        offboard=lambda: revoke,
        principal=principal,
    )


@router.post("/users/{user_id}/disable", name="users.disable")
def users_disable(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user_id: RowId,
    principal: RecentAdmin,
    keep_credentials: Annotated[bool, Form()] = False,
) -> Response:
    """Disable the account; its active credentials are revoked unless `keep_credentials` is ticked."""
    return _set_disabled(
        request, db, settings, user_id, principal, disabled=True, revoke=not keep_credentials
    )


@router.post("/users/{user_id}/enable", name="users.enable")
def users_enable(
    request: Request, db: DbSession, settings: AppSettings, user_id: RowId, principal: RecentAdmin
) -> Response:
    return _set_disabled(request, db, settings, user_id, principal, disabled=False)


@router.post("/users/{user_id}/password", name="users.reset_password")
def users_reset_password(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    user_id: RowId,
    principal: RecentAdmin,
    password: Annotated[str, Form(max_length=1024)] = "",
    password_confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    user = _user_or_404(db, user_id)

    def reset() -> None:
        if password != password_confirm:
            raise InvalidInput("The passwords differ.", field="password_confirm")
        reset_password(
            db, user, new_password=password, actor=actor_of(principal, request), now=now_utc(request)
        )

    return _change(request, db, settings, user, reset)


# ---------------------------------------------------------------- /account (everyone, own account)


def _account_page(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: Principal,
    *,
    password_form: FormState | None = None,
    token_form: FormState | None = None,
    new_token: str | None = None,
    status_code: int = 200,
) -> Response:
    assert principal.user_id is not None
    user = _user_or_404(db, principal.user_id)
    now = now_utc(request)
    context = {
        "user": user,
        "tokens": [(token, token_state(token, now)) for token in list_tokens(db, user_id=user.id)],
        "password_form": password_form or FormState(),
        "token_form": token_form or FormState(),
        "new_token": new_token,
        "recent_auth": recent_auth(request),
        "flash": request.query_params.get("done"),
    }
    return render(
        request, "accounts/account.html", context, partial="accounts/_tokens.html", status_code=status_code
    )


@router.get("/account", name="users.account")
def account(request: Request, db: DbSession, settings: AppSettings, principal: Viewer) -> Response:
    return _account_page(request, db, settings, principal)


@router.post("/account/password", name="users.account_password")
def account_password(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentViewer,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    new_password_confirm: Annotated[str, Form(max_length=1024)] = "",
    end_tokens: Annotated[bool, Form()] = False,
    form_sent: Annotated[bool, Form(alias="password_form")] = False,
) -> Response:
    assert principal.user_id is not None
    user = _user_or_404(db, principal.user_id)
    # "End my API tokens" is ticked by default on the page; an API-style post without the form
    # marker ends them too (the safe side).
    end = end_tokens or not form_sent
    try:
        if new_password != new_password_confirm:
            raise InvalidInput("The new passwords differ.", field="new_password_confirm")
        # The attempt is counted in its own transaction; the hash runs with no connection held.
        end_request_transaction(request)
        wait = change_own_password(
            db,
            user,
            factory=request.app.state.session_factory,
            policy=backoff_policy(settings),
            current_password=current_password,
            new_password=new_password,
            client=client_info(request),
            keep_session_id=principal.session_id,
            end_tokens=end,
            now=now_utc(request),
        )
    except ServiceError as exc:
        form = FormState.refused({}, exc)
        return _account_page(
            request, db, settings, principal, password_form=form, status_code=status_for(exc)
        )
    if wait:
        form = FormState.refused(
            {}, InvalidInput(f"Too many failed attempts. Wait {max(1, round(wait))} s before trying again.")
        )
        response = _account_page(request, db, settings, principal, password_form=form, status_code=429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    return redirect_after_post(request, "/account?done=password")


def _expiry_days(text: str) -> int | None:
    if text.strip() in ("", "0", "never"):
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            "Expiry is a number of days, or empty for none.", field="expires_in_days"
        ) from None


@router.post("/account/tokens", name="users.token_create")
def account_token_create(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentViewer,
    name: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Annotated[str, Form(max_length=8)] = "90",
) -> Response:
    assert principal.user_id is not None
    user = _user_or_404(db, principal.user_id)
    values = {"name": name, "expires_in_days": expires_in_days}
    try:
        days = _expiry_days(expires_in_days)
        raw, _token = create_token(
            db,
            user,
            name=name,
            expires_in_days=days,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        form = FormState.refused(values, exc)
        return _account_page(request, db, settings, principal, token_form=form, status_code=status_for(exc))
    # Shown once, in this response only; never stored, never in a URL.
    return _account_page(request, db, settings, principal, new_token=raw, status_code=201)


@router.post("/tokens/{token_id}/revoke", name="users.token_revoke")
def token_revoke(request: Request, db: DbSession, token_id: RowId, principal: Viewer) -> Response:
    token = get_token_or_none(db, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.can(Role.admin)):
        raise NotFound(f"No token with id {token_id} of yours.")
    revoke_token(db, token, actor=actor_of(principal, request), now=now_utc(request))
    back = (
        "/account?done=revoked"
        if token.user_id == principal.user_id
        else f"/users/{token.user_id}?done=revoked"
    )
    return redirect_after_post(request, back)


# ---------------------------------------------------------------- JSON API


@router.get("/api/v1/users", name="users.api_list", response_model=list[UserOut], tags=["accounts"])
def api_users(db: DbSession, _principal: Admin) -> list[UserOut]:
    """Every account (admins only)."""
    return [
        UserOut(
            id=u.id,
            username=u.username,
            role=u.role,
            disabled=u.disabled,
            created_at=u.created_at,
            last_sign_in_at=u.last_sign_in_at,
        )
        for u in list_users(db)
    ]


def _token_out(token: ApiToken, now: dt.datetime) -> TokenOut:
    return TokenOut(
        id=token.id,
        prefix=token.prefix,
        name=token.name,
        state=token_state(token, now),
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.get("/api/v1/tokens", name="users.api_tokens", response_model=list[TokenOut], tags=["accounts"])
def api_tokens(request: Request, db: DbSession, principal: Viewer) -> list[TokenOut]:
    """Your own API tokens (never the secret)."""
    now = now_utc(request)
    return [_token_out(t, now) for t in list_tokens(db, user_id=principal.user_id)]


@router.delete(
    "/api/v1/tokens/{token_id}", name="users.api_token_revoke", response_model=TokenOut, tags=["accounts"]
)
def api_token_revoke(request: Request, db: DbSession, token_id: RowId, principal: Viewer) -> TokenOut:
    """Revoke one of your tokens (admins: any token). Revoking the token in use works too."""
    token = get_token_or_none(db, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.can(Role.admin)):
        raise NotFound(f"No token with id {token_id} of yours.")
    revoke_token(db, token, actor=actor_of(principal, request), now=now_utc(request))
    return _token_out(token, now_utc(request))
