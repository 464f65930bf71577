"""HTTP routes for emergency access: the issue form, live progress, inventory, downloads and /api/v1.

Operations that talk to a cluster run through `app.services.credentials.runs`, which commits each
step so the progress partial shows it while it happens. Refusals propagate to the one mapping in
`app.web.errors`; only the issue form catches them, to re-render with its fields marked. Downloads
need a recent password confirmation (API tokens are their own proof) and each one is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app.integrations.pki import KeyType, format_fingerprint
from app.models import Cluster, Credential
from app.schemas import CredentialIssue, CredentialOut, CredentialRevokedOut
from app.services.audit import Actor
from app.services.credentials import access as handout
from app.services.credentials import groups, queries, reach, runs
from app.services.credentials.access import Refused
from app.services.credentials.keys import data_key_problem, vault_from_settings
from app.services.credentials.paths import issuing_path_for
from app.services.credentials.vocabulary import (
    ARTIFACTS,
    BUILTIN_ROLES,
    DEFAULT_GROUP,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_ROLE,
    ISSUE_STEPS,
    MIN_LIFETIME_SECONDS,
    STEP_LABELS,
    DuplicateCredential,
    IssueRequest,
    default_identity,
    lifetime_warning,
    revoke_notice,
)
from app.services.errors import Conflict, InvalidInput
from app.settings import Settings
from app.web.access import cut_off_for_template
from app.web.deps import AppSettings, DbSession, OptionalRowIdQuery, RowId, end_request_transaction
from app.web.errors import api_detail, error_page, status_for
from app.web.forms import FormState
from app.web.security import (
    Principal,
    RecentAdmin,
    RecentDownload,
    RecentResponder,
    Responder,
    Role,
    Viewer,
    actor_of,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()

LIFETIME_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def credential_from_path(credential_id: RowId, db: DbSession) -> Credential:
    """The credential the path names (404 when there is none)."""
    return queries.get_credential(db, credential_id)


PathCredential = Annotated[Credential, Depends(credential_from_path)]


def _factory(request: Request) -> sessionmaker[Session]:
    """The factory a credential run opens its own sessions from; the request's transaction ends
    first, so the run neither waits on it (SQLite's write lock) nor commits rows it cannot see."""
    end_request_transaction(request)
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def _record(db: Session, credential_id: int) -> CredentialOut:
    """The credential as the API shows it, re-read after a run committed in its own sessions."""
    db.expire_all()
    credential = queries.get_credential(db, credential_id)
    return CredentialOut.of(credential, queries.run_events(credential))


def _refused(request: Request, refusal: Refused) -> Response:
    """Answer a refusal that is already audited. Returned, not raised, so the request's transaction
    commits the audit row; the status and body are those of the one mapping."""
    return error_page(request, status_for(refusal.error), api_detail(refusal.error))


# ------------------------------------------------------------------ JSON API


@router.post(
    "/api/v1/clusters/{cluster}/credentials",
    status_code=201,
    response_model=CredentialOut,
    name="credentials.api_issue",
)
def api_issue(
    cluster: str,
    body: CredentialIssue,
    request: Request,
    response: Response,
    principal: RecentResponder,
    db: DbSession,
    settings: AppSettings,
    region: str | None = None,
) -> CredentialOut | JSONResponse:
    """Issue a credential and wait for the result (201 active; 502 when a cluster step failed)."""
    target = queries.find_cluster_for_path(db, cluster, region)
    actor = actor_of(principal, request)
    issue = IssueRequest(
        cluster_pk=target.id,
        username=body.identity or default_identity(principal.username),
        group=body.group,
        cluster_role=body.cluster_role,
        lifetime_seconds=body.lifetime_seconds,
        key_type=body.key_type.value,
        custody=body.custody,
        csr_pem=body.csr,
    )
    try:
        credential_id = runs.start_issue(settings, _factory(request), issue, actor)
    except DuplicateCredential as exc:
        # The refusal names the credential the identity already has, with its id and page.
        url = str(request.url_for("credentials.detail", credential_id=exc.existing_id))
        return JSONResponse(
            {"detail": exc.message, "existing_id": exc.existing_id, "existing_url": url},
            status_code=status_for(exc),
        )
    except InvalidInput as exc:
        # This endpoint has always answered bad input as {"detail": text, "field": form field}, and
        # scripts read `field`; other refusals take the shared shape.
        return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=status_for(exc))
    runs.run_pending(settings, _factory(request), [credential_id], actor)
    record = _record(db, credential_id)
    if record.status != "active":
        response.status_code = 502
    return record


@router.get("/api/v1/credentials", response_model=list[CredentialOut], name="credentials.api_list")
def api_list(principal: Viewer, db: DbSession, cluster: OptionalRowIdQuery = None) -> list[CredentialOut]:
    rows = queries.list_credentials(db, cluster_pk=cluster, include_history=True)
    return [CredentialOut.of(c, queries.run_events(c)) for c in rows]


@router.get("/api/v1/credentials/{credential_id}", response_model=CredentialOut, name="credentials.api_get")
def api_get(principal: Viewer, credential: PathCredential) -> CredentialOut:
    return CredentialOut.of(credential, queries.run_events(credential))


def _download(
    request: Request,
    db: Session,
    settings: Settings,
    principal: Principal,
    credential: Credential,
    artifact: str,
) -> Response:
    vault = vault_from_settings(settings)
    result = handout.download_credential(db, credential.id, actor_of(principal, request), vault, artifact)
    if isinstance(result, Refused):
        return _refused(request, result)
    return Response(
        result.content,
        media_type=result.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/api/v1/credentials/{credential_id}/verify", response_model=CredentialOut, name="credentials.api_verify"
)
def api_verify(
    principal: Responder, credential: PathCredential, request: Request, db: DbSession, settings: AppSettings
) -> CredentialOut:
    runs.verify(settings, _factory(request), credential.id, actor_of(principal, request))
    return _record(db, credential.id)


@router.post(
    "/api/v1/credentials/{credential_id}/renew",
    status_code=201,
    response_model=CredentialOut,
    name="credentials.api_renew",
)
def api_renew(
    principal: RecentResponder,
    credential: PathCredential,
    request: Request,
    response: Response,
    db: DbSession,
    settings: AppSettings,
) -> CredentialOut:
    actor = actor_of(principal, request)
    new_id = runs.start_renewal(settings, _factory(request), credential.id, actor)
    runs.run_pending(settings, _factory(request), [new_id], actor)
    record = _record(db, new_id)
    if record.status != "active":
        response.status_code = 502
    return record


@router.post(
    "/api/v1/credentials/{credential_id}/revoke",
    response_model=CredentialRevokedOut,
    name="credentials.api_revoke",
)
def api_revoke(
    principal: Responder, credential: PathCredential, request: Request, db: DbSession, settings: AppSettings
) -> CredentialRevokedOut:
    notice = runs.revoke(settings, _factory(request), credential.id, actor_of(principal, request))
    record = _record(db, credential.id)
    return CredentialRevokedOut(**record.model_dump(), notice=notice)


# ------------------------------------------------------------------ pages


def _inventory_context(
    db: Session,
    principal: Principal,
    actor: Actor,
    settings: Settings,
    cluster: int | None,
    person: str | None,
    cut_off: list[reach.CutOff],
) -> dict[str, Any]:
    rows = queries.list_credentials(db, cluster_pk=cluster, issued_by=person, people_only=True)
    has_key, key_problem = data_key_problem(settings)
    clusters = queries.list_clusters(db)
    all_rows = rows if cluster is None and not person else queries.list_credentials(db)
    return {
        "rows": rows,
        "clusters": clusters,
        "cluster_filter": cluster,
        "person_filter": person or "",
        "people": queries.issuers(db),
        "filter_query": urlencode({k: v for k, v in (("cluster", cluster), ("person", person)) if v}),
        # The banner's list: read once per data version, not once per page.
        "cut_off": reach.cut_off_clusters(cut_off),
        "warnings": queries.expiry_warnings(db, cluster_pk=cluster),
        "principal": principal,
        "actor_is_admin": principal.role is Role.admin,
        "can_issue": principal.role.allows(Role.responder),
        "has_data_key": has_key,
        "data_key_problem": key_problem,
        "fallback_missing": queries.clusters_without_fallback(clusters, all_rows),
        "now": dt.datetime.now(dt.UTC),
        "fmt_fp": format_fingerprint,
        "can_manage": lambda c: queries.can_manage(c, actor),
    }


@router.get("/credentials", name="credentials.index")
def index(
    request: Request,
    principal: Viewer,
    db: DbSession,
    settings: AppSettings,
    cluster: OptionalRowIdQuery = None,
    person: Annotated[
        str | None, Query(max_length=150, description="Only credentials this account issued.")
    ] = None,
) -> Response:
    context = _inventory_context(
        db, principal, actor_of(principal, request), settings, cluster, person, cut_off_for_template(request)
    )
    return render(request, "credentials/index.html", context, partial="credentials/_table.html")


@router.get("/credentials/expiry", name="credentials.expiry")
def expiry(
    request: Request, principal: Viewer, db: DbSession, cluster: OptionalRowIdQuery = None
) -> Response:
    """Expiry warnings (30 and 7 days) as a partial for the overview and cluster pages."""
    warnings = queries.expiry_warnings(db, cluster_pk=cluster)
    return render(
        request, "credentials/_expiry.html", {"warnings": warnings}, partial="credentials/_expiry.html"
    )


def _form_context(
    db: Session, principal: Principal, settings: Settings, form: FormState, extra_roles: list[str]
) -> dict[str, Any]:
    lifetime_seconds = _lifetime_seconds(form.values)
    return {
        "clusters": queries.list_clusters(db, issuable_only=True),
        "roles": _role_choices(extra_roles),
        "key_types": list(KeyType),
        "f": form,
        "principal": principal,
        "is_admin": principal.role is Role.admin,
        "has_data_key": data_key_problem(settings)[0],
        "lifetime_warning": lifetime_warning(lifetime_seconds) if lifetime_seconds else None,
        "default_identity": default_identity(principal.username),
        "issuing_path": issuing_path_for(db, settings, form.values.get("cluster")),
        "allowed_groups": groups.allowed_groups(db, setting=settings.credential_allowed_groups).groups,
    }


def _role_choices(extra: list[str]) -> list[str]:
    return list(BUILTIN_ROLES) + sorted(r for r in extra if r not in BUILTIN_ROLES)


def _lifetime_seconds(values: dict[str, str]) -> int:
    try:
        return int(float(values.get("lifetime", DEFAULT_LIFETIME_DAYS))) * LIFETIME_UNITS.get(
            str(values.get("lifetime_unit", "days")), 86400
        )
    except (TypeError, ValueError):
        return 0


def _default_values(
    principal: Principal, cluster: int | None, settings: Settings, allowed_groups: tuple[str, ...]
) -> dict[str, str]:
    # Lifeline's own group while it is allowed; otherwise none (an admin's list may drop it).
    return {
        "cluster": str(cluster) if cluster is not None else "",
        "username": default_identity(principal.username),
        "group": DEFAULT_GROUP if DEFAULT_GROUP in allowed_groups else "",
        "cluster_role": DEFAULT_ROLE,
        "other_role": "",
        "lifetime": str(reach.default_lifetime_days(settings)),
        "lifetime_unit": "days",
        "key_type": KeyType.ecdsa_p256.value,
        "custody": "server",
    }


@router.get("/credentials/new", name="credentials.new")
def new_form(
    request: Request,
    principal: RecentResponder,
    db: DbSession,
    settings: AppSettings,
    cluster: OptionalRowIdQuery = None,
) -> Response:
    allowed = groups.allowed_groups(db, setting=settings.credential_allowed_groups).groups
    form = FormState(_default_values(principal, cluster, settings, allowed))
    context = _form_context(db, principal, settings, form, [])
    chosen = db.get(Cluster, cluster) if cluster is not None else None
    if chosen is not None:
        context["horizon"] = reach.horizon_advice(db, settings, chosen)
        context["chosen_cluster"] = chosen
    return render(request, "credentials/new.html", context)


@router.post("/credentials/new/lifetime", name="credentials.lifetime_hint")
def lifetime_hint(
    request: Request,
    principal: Responder,
    lifetime: Annotated[str, Form()] = "",
    lifetime_unit: Annotated[str, Form()] = "days",
) -> Response:
    """The lifetime warning, re-rendered as the user types (HTMX)."""
    seconds = _lifetime_seconds({"lifetime": lifetime, "lifetime_unit": lifetime_unit})
    warning = lifetime_warning(seconds) if seconds else None
    too_short = bool(lifetime) and seconds < MIN_LIFETIME_SECONDS
    return render(
        request,
        "credentials/_lifetime_hint.html",
        {"lifetime_warning": warning, "too_short": too_short},
        partial="credentials/_lifetime_hint.html",
    )


@router.post("/credentials", name="credentials.create")
def create(
    request: Request,
    background: BackgroundTasks,
    principal: RecentResponder,
    db: DbSession,
    settings: AppSettings,
    cluster: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    cluster_role: Annotated[str, Form()] = DEFAULT_ROLE,
    other_role: Annotated[str, Form()] = "",
    lifetime: Annotated[str, Form()] = str(DEFAULT_LIFETIME_DAYS),
    lifetime_unit: Annotated[str, Form()] = "days",
    key_type: Annotated[str, Form()] = KeyType.ecdsa_p256.value,
    custody: Annotated[str, Form()] = "server",
    csr: Annotated[str, Form()] = "",
    csr_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record the request and run its steps in the background; a refused form re-renders marked."""
    values = {
        "cluster": cluster,
        "username": username,
        "group": group,
        "cluster_role": cluster_role,
        "other_role": other_role,
        "lifetime": lifetime,
        "lifetime_unit": lifetime_unit,
        "key_type": key_type,
        "custody": custody,
        "csr": csr,
    }
    if csr_file is not None and csr_file.filename:
        values["csr"] = csr_file.file.read(65536).decode("utf-8", errors="replace")
    errors: dict[str, str] = {}
    if not cluster.isdigit():
        errors["cluster"] = "choose a cluster"
    if lifetime_unit not in LIFETIME_UNITS:
        errors["lifetime"] = "choose minutes, hours or days"
    form, status = FormState(values, errors), 422
    duplicate_id: int | None = None
    if form.ok:
        actor = actor_of(principal, request)
        issue = IssueRequest(
            cluster_pk=int(cluster),
            username=username or default_identity(principal.username),
            group=group,
            cluster_role=other_role.strip() or cluster_role,
            lifetime_seconds=_lifetime_seconds(values),
            key_type=key_type,
            custody=custody,
            csr_pem=values["csr"] or None,
        )
        try:
            credential_id = runs.start_issue(settings, _factory(request), issue, actor)
        except (InvalidInput, Conflict) as exc:
            form, status = FormState.refused(values, exc), status_for(exc)
            if isinstance(exc, DuplicateCredential):
                duplicate_id = exc.existing_id
        else:
            background.add_task(runs.run_pending, settings, _factory(request), [credential_id], actor)
            return redirect_after_post(
                request, str(request.url_for("credentials.detail", credential_id=credential_id))
            )
    context = _form_context(db, principal, settings, form, []) | {"duplicate_id": duplicate_id}
    return render(
        request, "credentials/new.html", context, partial="credentials/_form.html", status_code=status
    )


def _detail_context(
    db: Session, credential: Credential, principal: Principal, actor: Actor
) -> dict[str, Any]:
    steps = queries.run_events(credential)
    operation = steps[0].operation if steps else "issue"
    planned = list(ISSUE_STEPS) if operation in ("issue", "renew") else []
    seen = {e.step for e in steps}
    return {
        "credential": credential,
        "steps": steps,
        "pending_steps": [s for s in planned if s not in seen] if credential.status == "issuing" else [],
        "step_labels": STEP_LABELS,
        "operation": operation,
        "renewal": queries.latest_renewal(db, credential),
        "can_manage": queries.can_manage(credential, actor),
        "is_admin": principal.role is Role.admin,
        "fmt_fp": format_fingerprint,
        "revoke_notice": revoke_notice(credential.username, credential.group_name, credential.not_after),
        "now": dt.datetime.now(dt.UTC),
        "lifetime_warning": lifetime_warning(credential.requested_lifetime_seconds),
    }


@router.get("/credentials/{credential_id}", name="credentials.detail")
def detail(principal: Viewer, credential: PathCredential, request: Request, db: DbSession) -> Response:
    context = _detail_context(db, credential, principal, actor_of(principal, request))
    return render(request, "credentials/detail.html", context, partial="credentials/_detail.html")


def _flash_redirect(request: Request, credential_id: int, flash: str) -> Response:
    url = str(request.url_for("credentials.detail", credential_id=credential_id)) + f"?flash={flash}"
    return redirect_after_post(request, url)


@router.post("/credentials/{credential_id}/verify", name="credentials.verify")
def verify(
    principal: Responder, credential: PathCredential, request: Request, settings: AppSettings
) -> Response:
    runs.verify(settings, _factory(request), credential.id, actor_of(principal, request))
    return _flash_redirect(request, credential.id, "verified")


@router.post("/credentials/{credential_id}/renew", name="credentials.renew")
def renew(
    principal: RecentResponder,
    credential: PathCredential,
    request: Request,
    background: BackgroundTasks,
    settings: AppSettings,
) -> Response:
    actor = actor_of(principal, request)
    new_id = runs.start_renewal(settings, _factory(request), credential.id, actor)
    background.add_task(runs.run_pending, settings, _factory(request), [new_id], actor)
    return redirect_after_post(request, str(request.url_for("credentials.detail", credential_id=new_id)))


@router.post("/credentials/{credential_id}/revoke", name="credentials.revoke")
def revoke(
    principal: Responder, credential: PathCredential, request: Request, settings: AppSettings
) -> Response:
    runs.revoke(settings, _factory(request), credential.id, actor_of(principal, request))
    return _flash_redirect(request, credential.id, "revoked")


@router.post("/credentials/fallback", name="credentials.fallback")
def fallback(
    request: Request,
    background: BackgroundTasks,
    principal: RecentAdmin,
    settings: AppSettings,
    lifetime_days: Annotated[int, Form(ge=1, le=3650)] = 90,
) -> Response:
    """Issue Lifeline's own `view` credential on every cluster that lacks one."""
    actor = actor_of(principal, request)
    ids = runs.start_fallback(settings, _factory(request), actor, lifetime_days)
    background.add_task(runs.run_pending, settings, _factory(request), ids, actor)
    return redirect_after_post(request, str(request.url_for("credentials.index")) + f"?queued={len(ids)}")


def _download_route(artifact: str) -> Callable[..., Response]:
    def download(
        principal: RecentDownload,
        credential: PathCredential,
        request: Request,
        db: DbSession,
        settings: AppSettings,
    ) -> Response:
        return _download(request, db, settings, principal, credential, artifact)

    download.__name__ = download.__qualname__ = artifact
    download.__doc__ = f"The credential's {artifact} (audited; refused to those who may not have it)."
    return download


# One handler per artifact, on the API path (tokens) and the page path (browser links) alike.
for _artifact in ARTIFACTS:
    router.add_api_route(
        f"/api/v1/credentials/{{credential_id}}/{_artifact}",
        _download_route(_artifact),
        methods=["GET"],
        name=f"credentials.api_{_artifact}",
    )
    router.add_api_route(
        f"/credentials/{{credential_id}}/{_artifact}",
        _download_route(_artifact),
        methods=["GET"],
        name=f"credentials.{_artifact}",
    )


__all__ = ["router"]
