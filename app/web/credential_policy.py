"""The Credential policy page (/credential-policy, admins): which groups (certificate O) a credential
may carry. Saving or resetting needs a recent password; the service writes the audit row."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.services.credentials import groups
from app.services.errors import ServiceError
from app.web.deps import AppSettings, DbSession
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.security import Admin, RecentAdmin, actor_of, now_utc, recent_auth
from app.web.templating import redirect_after_post, render

router = APIRouter()

# Room for a few hundred groups; the edge refuses control characters in it before we see it.
MAX_FORM_LENGTH = 16_000


@router.get("/credential-policy", name="credential_policy.page")
def page(request: Request, db: DbSession, settings: AppSettings, _principal: Admin) -> Response:
    return _page(request, db, settings)


def _page(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    state = groups.allowed_groups(db, setting=settings.credential_allowed_groups)
    context = {
        "allowed": state,
        "setting_groups": list(settings.credential_allowed_groups),
        "max_length": groups.MAX_LENGTH,
        "f": form or FormState({"groups": "\n".join(state.groups)}),
        "flash": request.query_params.get("done"),
        "recent_auth": recent_auth(request),
    }
    return render(request, "credentials/policy.html", context, status_code=status_code)


@router.post("/credential-policy/groups", name="credential_policy.save")
def save(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    principal: RecentAdmin,
    groups_text: Annotated[str, Form(alias="groups", max_length=MAX_FORM_LENGTH)] = "",
) -> Response:
    try:
        groups.set_allowed_groups(
            db,
            groups_text.split("\n"),
            setting=settings.credential_allowed_groups,
            actor=actor_of(principal, request),
            now=now_utc(request),
        )
    except ServiceError as exc:
        form = FormState.refused({"groups": groups_text}, exc)
        return _page(request, db, settings, form=form, status_code=status_for(exc))
    return redirect_after_post(request, "/credential-policy?done=saved")


@router.post("/credential-policy/groups/reset", name="credential_policy.reset")
def reset(request: Request, db: DbSession, settings: AppSettings, principal: RecentAdmin) -> Response:
    groups.reset_allowed_groups(
        db,
        setting=settings.credential_allowed_groups,
        actor=actor_of(principal, request),
        now=now_utc(request),
    )
    return redirect_after_post(request, "/credential-policy?done=reset")
