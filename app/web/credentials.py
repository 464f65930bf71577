"""HTTP routes for emergency access: the issue form, live progress, inventory, downloads and /api/v1.

Operations that talk to a cluster run through `app.jobs.credentials`, which commits each step so
the progress partial shows it while it happens. Downloads need a recent password confirmation
(API tokens are their own proof) and each one is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app.integrations.pki import KeyType, format_fingerprint
from app.integrations.vault import DataKeyError
from app.jobs import credentials as runner
from app.models import Cluster, Credential
from app.services.audit import ClientInfo
from app.services.credentials import access as credential_access
from app.services.credentials import lifecycle
from app.services.credentials.lifecycle import (
    BUILTIN_ROLES,
    DEFAULT_GROUP,
    DEFAULT_LIFETIME_DAYS,
    MIN_LIFETIME_SECONDS,
    REVOKE_NOTICE,
    STEP_LABELS,
    Actor,
    CredentialError,
    CredentialNotFound,
    IssueRequest,
)
from app.web.deps import AppSettings, DbSession, OptionalRowIdQuery, RowId
from app.web.security import (
    Admin,
    Principal,
    RecentResponder,
    Responder,
    Role,
    Viewer,
)
from app.web.templating import redirect_after_post, render

router = APIRouter()


LIFETIME_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def actor_of(principal: Principal, request: Request) -> Actor:
    return Actor(
        user_id=principal.user_id,
        username=principal.username,
        is_admin=principal.role is Role.admin,
        via_token=principal.via_token,
        client=ClientInfo(
            address=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        ),
    )


def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def _credential_or_404(db: Session, credential_id: int) -> Credential:
    try:
        return lifecycle.get_credential(db, credential_id)
    except CredentialNotFound:
        raise HTTPException(404, f"credential {credential_id} does not exist") from None


# ------------------------------------------------------------------ JSON records


def credential_record(credential: Credential) -> dict[str, Any]:
    """The API's view of a credential: never the key, never the sealed blob."""
    return {
        "id": credential.id,
        "kind": credential.kind,
        "cluster": {
            "id": credential.cluster.id,
            "name": credential.cluster.name,
            "region": credential.cluster.region,
        },
        "identity": credential.username,
        "group": credential.group_name,
        "cluster_role": credential.cluster_role,
        "key_type": credential.key_type,
        "custody": credential.custody,
        "status": credential.status,
        "failed_step": credential.failed_step,
        "error": credential.error,
        "certificate_pem": credential.certificate_pem,
        "fingerprint_sha256": credential.fingerprint_sha256,
        "serial": credential.serial_hex,
        "not_before": _iso(credential.not_before),
        "not_after": _iso(credential.not_after),
        "requested_lifetime_seconds": credential.requested_lifetime_seconds,
        "binding_name": credential.binding_name,
        "csr_name": credential.csr_name,
        "issued_by": credential.issued_by,
        "issued_at": _iso(credential.issued_at),
        "renewal_of": credential.renewal_of_id,
        "last_verified_at": _iso(credential.last_verified_at),
        "last_verified_ok": credential.last_verified_ok,
        "last_verified_message": credential.last_verified_message,
        "revoked_at": _iso(credential.revoked_at),
        "revoked_by": credential.revoked_by,
        "downloads": credential.download_count,
        "last_downloaded_at": _iso(credential.last_downloaded_at),
        "control_plane_ips": list(credential.control_plane_ips),
        "steps": [
            {"step": e.step, "state": e.state, "message": e.message, "at": _iso(e.at)}
            for e in lifecycle.run_events(credential)
        ],
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


class IssueBody(BaseModel):
    identity: str | None = Field(
        default=None, description="Kubernetes user (certificate CN); default lifeline:<you>"
    )
    group: str | None = Field(default=DEFAULT_GROUP, description="Kubernetes group (certificate O)")
    cluster_role: str = "cluster-admin"
    lifetime_seconds: int = Field(default=DEFAULT_LIFETIME_DAYS * 86400, ge=MIN_LIFETIME_SECONDS)
    key_type: KeyType = KeyType.ecdsa_p256
    custody: Literal["server", "uploaded-csr"] = "server"
    csr: str | None = Field(default=None, description="PEM CSR when custody is uploaded-csr")


def _cluster_from_path(db: Session, cluster: str, region: str | None) -> Cluster:
    if cluster.isdigit():
        row = db.get(Cluster, int(cluster))
        if row is not None:
            return row
    stmt = select(Cluster).where(Cluster.name == cluster)
    if region:
        stmt = stmt.where(Cluster.region == region)
    rows = list(db.scalars(stmt))
    if not rows:
        raise HTTPException(404, f"cluster {cluster!r} does not exist")
    if len(rows) > 1:
        raise HTTPException(409, f"cluster name {cluster!r} exists in several regions: add ?region=")
    return rows[0]


@router.post("/api/v1/clusters/{cluster}/credentials", status_code=201, name="credentials.api_issue")
def api_issue(
    cluster: str,
    body: IssueBody,
    request: Request,
    principal: RecentResponder,
    db: DbSession,
    settings: AppSettings,
    region: str | None = None,
) -> JSONResponse:
    """Issue a credential and wait for the result (201 active; 502 when a cluster step failed)."""
    target = _cluster_from_path(db, cluster, region)
    actor = actor_of(principal, request)
    issue = IssueRequest(
        cluster_pk=target.id,
        username=body.identity or lifecycle.default_identity(principal.username),
        group=body.group,
        cluster_role=body.cluster_role,
        lifetime_seconds=body.lifetime_seconds,
        key_type=body.key_type.value,
        custody=body.custody,
        csr_pem=body.csr,
    )
    try:
        credential_id = runner.start_issue(settings, _factory(request), issue, actor)
    except CredentialError as exc:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)
    except DataKeyError as exc:
        return JSONResponse({"detail": str(exc), "field": "custody"}, status_code=422)
    runner.run_pending(settings, _factory(request), [credential_id], actor)
    db.expire_all()
    credential = _credential_or_404(db, credential_id)
    return JSONResponse(
        credential_record(credential), status_code=201 if credential.status == "active" else 502
    )


@router.get("/api/v1/credentials", name="credentials.api_list")
def api_list(principal: Viewer, db: DbSession, cluster: OptionalRowIdQuery = None) -> list[dict[str, Any]]:
    return [
        credential_record(c) for c in lifecycle.list_credentials(db, cluster_pk=cluster, include_history=True)
    ]


@router.get("/api/v1/credentials/{credential_id}", name="credentials.api_get")
def api_get(credential_id: RowId, principal: Viewer, db: DbSession) -> dict[str, Any]:
    return credential_record(_credential_or_404(db, credential_id))


def _download(
    request: Request, db: Session, settings: Any, principal: Principal, credential_id: int, artifact: str
) -> Response:
    _credential_or_404(db, credential_id)
    try:
        vault = runner.vault_from_settings(settings)
    except DataKeyError as exc:
        raise HTTPException(503, str(exc)) from None
    try:
        result = credential_access.download_credential(
            db, credential_id, actor_of(principal, request), vault, artifact
        )
    except CredentialError as exc:
        status = 403 if "only" in str(exc) and "issued" in str(exc) else 409
        if status == 403:
            # The denied attempt is audited: commit it even though the request fails.
            db.commit()
        raise HTTPException(status, str(exc)) from None
    return Response(
        result.content,
        media_type=result.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/api/v1/credentials/{credential_id}/kubeconfig", name="credentials.api_kubeconfig")
def api_kubeconfig(
    credential_id: RowId, request: Request, principal: RecentResponder, db: DbSession, settings: AppSettings
) -> Response:
    return _download(request, db, settings, principal, credential_id, "kubeconfig")


@router.get("/api/v1/credentials/{credential_id}/bundle", name="credentials.api_bundle")
def api_bundle(
    credential_id: RowId, request: Request, principal: RecentResponder, db: DbSession, settings: AppSettings
) -> Response:
    return _download(request, db, settings, principal, credential_id, "bundle")


@router.post("/api/v1/credentials/{credential_id}/verify", name="credentials.api_verify")
def api_verify(
    credential_id: RowId, request: Request, principal: Responder, db: DbSession, settings: AppSettings
) -> dict[str, Any]:
    _credential_or_404(db, credential_id)
    try:
        runner.verify(settings, _factory(request), credential_id, actor_of(principal, request))
    except CredentialError as exc:
        raise HTTPException(409 if "only an active" in str(exc) else 403, str(exc)) from None
    db.expire_all()
    return credential_record(_credential_or_404(db, credential_id))


@router.post("/api/v1/credentials/{credential_id}/renew", status_code=201, name="credentials.api_renew")
def api_renew(
    credential_id: RowId, request: Request, principal: RecentResponder, db: DbSession, settings: AppSettings
) -> JSONResponse:
    _credential_or_404(db, credential_id)
    actor = actor_of(principal, request)
    try:
        new_id = runner.start_renewal(settings, _factory(request), credential_id, actor)
    except CredentialError as exc:
        raise HTTPException(
            409 if "only an active" in str(exc) or "already" in str(exc) else 403, str(exc)
        ) from None
    except DataKeyError as exc:
        raise HTTPException(503, str(exc)) from None
    runner.run_pending(settings, _factory(request), [new_id], actor)
    db.expire_all()
    credential = _credential_or_404(db, new_id)
    return JSONResponse(
        credential_record(credential), status_code=201 if credential.status == "active" else 502
    )


@router.post("/api/v1/credentials/{credential_id}/revoke", name="credentials.api_revoke")
def api_revoke(
    credential_id: RowId, request: Request, principal: Responder, db: DbSession, settings: AppSettings
) -> dict[str, Any]:
    _credential_or_404(db, credential_id)
    try:
        runner.revoke(settings, _factory(request), credential_id, actor_of(principal, request))
    except CredentialError as exc:
        message = str(exc)
        status = 403 if message.startswith("only an admin") else 409 if "only an active" in message else 502
        raise HTTPException(status, message) from None
    db.expire_all()
    record = credential_record(_credential_or_404(db, credential_id))
    record["notice"] = REVOKE_NOTICE
    return record


# ------------------------------------------------------------------ pages


def _inventory_context(
    db: Session, principal: Principal, settings: Any, cluster: int | None
) -> dict[str, Any]:
    rows = lifecycle.list_credentials(db, cluster_pk=cluster)
    try:
        has_key = runner.vault_from_settings(settings) is not None
        key_problem = None
    except DataKeyError as exc:
        has_key, key_problem = False, str(exc)
    clusters = list(db.scalars(select(Cluster).order_by(Cluster.name)))
    fallback_missing = [
        c.name
        for c in clusters
        if c.endpoint
        and c.certificate_authority
        and not any(
            r.cluster_pk == c.id and r.kind == "fallback" and r.status in ("active", "issuing") for r in rows
        )
    ]
    return {
        "rows": rows,
        "clusters": clusters,
        "cluster_filter": cluster,
        "warnings": lifecycle.expiry_warnings(db, cluster_pk=cluster),
        "principal": principal,
        "actor_is_admin": principal.role is Role.admin,
        "can_issue": principal.role.allows(Role.responder),
        "has_data_key": has_key,
        "data_key_problem": key_problem,
        "fallback_missing": fallback_missing,
        "now": dt.datetime.now(dt.UTC),
        "fmt_fp": format_fingerprint,
        "can_manage": lambda c: lifecycle.can_manage(c, _actor_light(principal)),
    }


def _actor_light(principal: Principal) -> Actor:
    return Actor(principal.user_id, principal.username, principal.role is Role.admin, principal.via_token)


@router.get("/credentials", name="credentials.index")
def index(
    request: Request,
    principal: Viewer,
    db: DbSession,
    settings: AppSettings,
    cluster: OptionalRowIdQuery = None,
) -> Response:
    context = _inventory_context(db, principal, settings, cluster)
    return render(request, "credentials/index.html", context, partial="credentials/_table.html")


@router.get("/credentials/expiry", name="credentials.expiry")
def expiry(
    request: Request, principal: Viewer, db: DbSession, cluster: OptionalRowIdQuery = None
) -> Response:
    """Expiry warnings (30 and 7 days) as a partial for the overview and cluster pages."""
    warnings = lifecycle.expiry_warnings(db, cluster_pk=cluster)
    return render(
        request, "credentials/_expiry.html", {"warnings": warnings}, partial="credentials/_expiry.html"
    )


def _form_context(
    db: Session, principal: Principal, settings: Any, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    clusters = [
        c
        for c in db.scalars(select(Cluster).order_by(Cluster.name))
        if c.endpoint and c.certificate_authority
    ]
    try:
        has_key = runner.vault_from_settings(settings) is not None
    except DataKeyError:
        has_key = False
    lifetime_seconds = _lifetime_seconds(values)
    return {
        "clusters": clusters,
        "roles": _role_choices(values.get("extra_roles") or []),
        "key_types": list(KeyType),
        "values": values,
        "errors": errors,
        "principal": principal,
        "is_admin": principal.role is Role.admin,
        "has_data_key": has_key,
        "lifetime_warning": lifecycle.lifetime_warning(lifetime_seconds) if lifetime_seconds else None,
        "default_identity": lifecycle.default_identity(principal.username),
    }


def _role_choices(extra: list[str]) -> list[str]:
    return list(BUILTIN_ROLES) + sorted(r for r in extra if r not in BUILTIN_ROLES)


def _lifetime_seconds(values: dict[str, Any]) -> int:
    try:
        return int(float(values.get("lifetime", DEFAULT_LIFETIME_DAYS))) * LIFETIME_UNITS.get(
            str(values.get("lifetime_unit", "days")), 86400
        )
    except (TypeError, ValueError):
        return 0


def _default_values(principal: Principal, cluster: int | None) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "username": lifecycle.default_identity(principal.username),
        "group": DEFAULT_GROUP,
        "cluster_role": "cluster-admin",
        "other_role": "",
        "lifetime": DEFAULT_LIFETIME_DAYS,
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
    values = _default_values(principal, cluster)
    return render(request, "credentials/new.html", _form_context(db, principal, settings, values, {}))


@router.post("/credentials/new/lifetime", name="credentials.lifetime_hint")
def lifetime_hint(
    request: Request,
    principal: Responder,
    lifetime: Annotated[str, Form()] = "",
    lifetime_unit: Annotated[str, Form()] = "days",
) -> Response:
    """The lifetime warning, re-rendered as the user types (HTMX)."""
    seconds = _lifetime_seconds({"lifetime": lifetime, "lifetime_unit": lifetime_unit})
    warning = lifecycle.lifetime_warning(seconds) if seconds else None
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
    settings: AppSettings,
    cluster: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    cluster_role: Annotated[str, Form()] = "cluster-admin",
    other_role: Annotated[str, Form()] = "",
    lifetime: Annotated[str, Form()] = str(DEFAULT_LIFETIME_DAYS),
    lifetime_unit: Annotated[str, Form()] = "days",
    key_type: Annotated[str, Form()] = KeyType.ecdsa_p256.value,
    custody: Annotated[str, Form()] = "server",
    csr: Annotated[str, Form()] = "",
    csr_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    values: dict[str, Any] = {
        "cluster": cluster,
        "username": username,
        "group": group,
        "cluster_role": cluster_role,
        "other_role": other_role,
        "lifetime": lifetime,
        "lifetime_unit": lifetime_unit,
        "key_type": key_type,
        "custody": custody,
    }
    csr_text = csr
    if csr_file is not None and csr_file.filename:
        csr_text = csr_file.file.read(65536).decode("utf-8", errors="replace")
    return _create_sync(request, background, principal, settings, values, csr_text)


def _create_sync(
    request: Request,
    background: BackgroundTasks,
    principal: Principal,
    settings: Any,
    values: dict[str, Any],
    csr_text: str,
) -> Response:
    errors: dict[str, str] = {}
    factory = _factory(request)
    cluster_raw = str(values.get("cluster", ""))
    role = (values.get("other_role") or "").strip() or str(values.get("cluster_role", "cluster-admin"))
    seconds = _lifetime_seconds(values)
    if not cluster_raw.isdigit():
        errors["cluster"] = "choose a cluster"
    if values.get("lifetime_unit") not in LIFETIME_UNITS:
        errors["lifetime"] = "choose minutes, hours or days"
    if not errors:
        issue = IssueRequest(
            cluster_pk=int(cluster_raw),
            username=str(values.get("username", "")) or lifecycle.default_identity(principal.username),
            group=str(values.get("group", "")),
            cluster_role=role,
            lifetime_seconds=seconds,
            key_type=str(values.get("key_type", KeyType.ecdsa_p256.value)),
            custody=str(values.get("custody", "server")),
            csr_pem=csr_text or None,
        )
        actor = actor_of(principal, request)
        try:
            credential_id = runner.start_issue(settings, factory, issue, actor)
        except CredentialError as exc:
            errors[exc.field or "form"] = str(exc)
        except DataKeyError as exc:
            errors["custody"] = str(exc)
        else:
            background.add_task(runner.run_pending, settings, factory, [credential_id], actor)
            return redirect_after_post(
                request, str(request.url_for("credentials.detail", credential_id=credential_id))
            )
    values["csr"] = csr_text
    with factory() as db:
        context = _form_context(db, principal, settings, values, errors)
        return render(
            request, "credentials/new.html", context, partial="credentials/_form.html", status_code=422
        )


def _detail_context(db: Session, credential: Credential, principal: Principal) -> dict[str, Any]:
    steps = lifecycle.run_events(credential)
    operation = steps[0].operation if steps else "issue"
    planned = list(lifecycle.ISSUE_STEPS) if operation in ("issue", "renew") else []
    seen = {e.step for e in steps}
    renewal = db.scalar(
        select(Credential)
        .where(Credential.renewal_of_id == credential.id)
        .order_by(Credential.id.desc())
        .limit(1)
    )
    return {
        "credential": credential,
        "steps": steps,
        "pending_steps": [s for s in planned if s not in seen] if credential.status == "issuing" else [],
        "step_labels": STEP_LABELS,
        "operation": operation,
        "renewal": renewal,
        "can_manage": lifecycle.can_manage(credential, _actor_light(principal)),
        "is_admin": principal.role is Role.admin,
        "fmt_fp": format_fingerprint,
        "revoke_notice": REVOKE_NOTICE,
        "now": dt.datetime.now(dt.UTC),
        "lifetime_warning": lifecycle.lifetime_warning(credential.requested_lifetime_seconds),
    }


@router.get("/credentials/{credential_id}", name="credentials.detail")
def detail(credential_id: RowId, request: Request, principal: Viewer, db: DbSession) -> Response:
    credential = _credential_or_404(db, credential_id)
    context = _detail_context(db, credential, principal)
    return render(request, "credentials/detail.html", context, partial="credentials/_detail.html")


def _flash_redirect(request: Request, credential_id: int, flash: str) -> Response:
    url = str(request.url_for("credentials.detail", credential_id=credential_id)) + f"?flash={flash}"
    return redirect_after_post(request, url)


@router.post("/credentials/{credential_id}/verify", name="credentials.verify")
def verify(
    credential_id: RowId, request: Request, principal: Responder, db: DbSession, settings: AppSettings
) -> Response:
    _credential_or_404(db, credential_id)
    try:
        runner.verify(settings, _factory(request), credential_id, actor_of(principal, request))
    except CredentialError as exc:
        raise HTTPException(403 if "responders" in str(exc) else 409, str(exc)) from None
    return _flash_redirect(request, credential_id, "verified")


@router.post("/credentials/{credential_id}/renew", name="credentials.renew")
def renew(
    credential_id: RowId,
    request: Request,
    background: BackgroundTasks,
    principal: RecentResponder,
    db: DbSession,
    settings: AppSettings,
) -> Response:
    _credential_or_404(db, credential_id)
    actor = actor_of(principal, request)
    try:
        new_id = runner.start_renewal(settings, _factory(request), credential_id, actor)
    except CredentialError as exc:
        raise HTTPException(403 if "responders" in str(exc) else 409, str(exc)) from None
    except DataKeyError as exc:
        raise HTTPException(503, str(exc)) from None
    background.add_task(runner.run_pending, settings, _factory(request), [new_id], actor)
    return redirect_after_post(request, str(request.url_for("credentials.detail", credential_id=new_id)))


@router.post("/credentials/{credential_id}/revoke", name="credentials.revoke")
def revoke(
    credential_id: RowId, request: Request, principal: Responder, db: DbSession, settings: AppSettings
) -> Response:
    _credential_or_404(db, credential_id)
    try:
        runner.revoke(settings, _factory(request), credential_id, actor_of(principal, request))
    except CredentialError as exc:
        message = str(exc)
        status = 403 if message.startswith("only an admin") else 409 if "only an active" in message else 502
        raise HTTPException(status, message) from None
    return _flash_redirect(request, credential_id, "revoked")


@router.get("/credentials/{credential_id}/kubeconfig", name="credentials.kubeconfig")
def kubeconfig(
    credential_id: RowId, request: Request, principal: RecentResponder, db: DbSession, settings: AppSettings
) -> Response:
    return _download(request, db, settings, principal, credential_id, "kubeconfig")


@router.get("/credentials/{credential_id}/bundle", name="credentials.bundle")
def bundle(
    credential_id: RowId, request: Request, principal: RecentResponder, db: DbSession, settings: AppSettings
) -> Response:
    return _download(request, db, settings, principal, credential_id, "bundle")


@router.post("/credentials/fallback", name="credentials.fallback")
def fallback(
    request: Request,
    background: BackgroundTasks,
    principal: Admin,
    settings: AppSettings,
    lifetime_days: Annotated[int, Form(ge=1, le=3650)] = 90,
) -> Response:
    """Issue Lifeline's own `view` credential on every cluster that lacks one."""
    actor = actor_of(principal, request)
    try:
        ids = runner.start_fallback(settings, _factory(request), actor, lifetime_days)
    except CredentialError as exc:
        raise HTTPException(409, str(exc)) from None
    except DataKeyError as exc:
        raise HTTPException(503, str(exc)) from None
    background.add_task(runner.run_pending, settings, _factory(request), ids, actor)
    return redirect_after_post(request, str(request.url_for("credentials.index")) + f"?queued={len(ids)}")


__all__ = ["credential_record", "router"]
