"""HTTP routes for clusters: the readiness list and cluster page (with exemption, attestation and
horizon forms), and /api/v1/clusters with findings exported as JSON, CSV or SARIF.

Viewers read; responders attest; admins accept risks and set the horizon. Forms re-render with their
field errors and the refusal's status; success answers HX-Redirect for HTMX and 303 otherwise. An
unknown or ambiguous cluster propagates to `app.web.errors` (404/409 on the page and the API alike).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.models import Cluster
from app.schemas import ClusterDetailOut, ClusterReadinessOut, FindingOut, ScorePointOut
from app.services.credentials.identities import identity_views
from app.services.drills.lifecycle import list_drills
from app.services.drills.vocabulary import ATTESTATION_TOPIC as DRILL_TOPIC
from app.services.errors import ServiceError
from app.services.readiness import records
from app.services.readiness.catalogue import worst
from app.services.readiness.export import dumps, to_csv, to_json, to_sarif
from app.services.readiness.records import ClusterView, ReadinessInputError
from app.services.readiness.specs import ATTESTATION_TOPICS, SPECS
from app.settings import Settings
from app.web.deps import AppSettings, DbSession
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.readiness.view import (
    FindingFilter,
    grouped_by_status_and_severity,
    readiness_summary,
    score_chart,
)
from app.web.security import Admin, Principal, Responder, Role, Viewer, actor_of
from app.web.templating import is_htmx_partial, redirect_after_post, render

router = APIRouter()


# ---------------------------------------------------------------- pages


@router.get("/clusters", name="clusters.index")
def clusters_page(request: Request, session: DbSession, settings: AppSettings, principal: Viewer) -> Response:
    """Every cluster with its readiness score, state, auth path and worst findings."""
    views = records.cluster_views(session, settings)
    context = {"views": views, "worst": worst, "interval": settings.readiness_poll_interval_seconds}
    return render(request, "readiness/index.html", context, partial="readiness/_table.html")


def _detail_context(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    cluster: Cluster,
    **extra: Any,
) -> dict[str, Any]:
    view = records.cluster_view(session, settings, cluster)
    params = request.query_params
    flt = FindingFilter.parse(
        params.get("status"), params.get("severity"), params.get("check"), params.get("q")
    )
    shown = flt.apply(view.findings)
    context: dict[str, Any] = {
        "view": view,
        "cluster": cluster,
        "state": view.state,
        "filter": flt,
        "groups": grouped_by_status_and_severity(shown),
        "summary": readiness_summary(view.findings, view.score),
        "shown": len(shown),
        "chart": score_chart(records.score_history(session, cluster, days=30), height=120),
        "exemptions": records.exemptions(session, cluster),
        "attestations": records.attestations(session, cluster),
        "attestation_topics": [
            (topic, SPECS[topic].title) for topic in ATTESTATION_TOPICS if topic != DRILL_TOPIC
        ],
        "drills_here": list_drills(session, cluster_pk=cluster.id, limit=10),
        "specs": SPECS,
        "can_attest": principal.role.allows(Role.responder),
        "can_exempt": principal.role.allows(Role.admin),
        "notice": params.get("notice", "")[:200],
        "forms": {"exemption": FormState(), "attestation": FormState(), "horizon": FormState()},
        "default_expiry": (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).strftime("%Y-%m-%d"),
        "interval": settings.readiness_poll_interval_seconds,
        "now": dt.datetime.now(dt.UTC),
        "identities": identity_views(session, cluster),
        "own_identities_on": settings.own_identities,
        "can_manage_identities": principal.role.allows(Role.admin),
    }  # fmt: skip
    context.update(extra)
    return context


@router.get("/clusters/{cluster}", name="clusters.detail")
def cluster_page(
    request: Request,
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Viewer,
    region: str | None = None,
) -> Response:
    """One cluster: a summary first, then access, nodes, findings by status and severity, forms."""
    row = records.find_cluster(session, cluster, region)
    context = _detail_context(request, session, settings, principal, row)
    return render(request, "readiness/detail.html", context, partial="readiness/_findings.html")


def _done(request: Request, cluster: Cluster, notice: str) -> Response:
    url = str(request.url_for("clusters.detail", cluster=cluster.name))
    url += f"?region={quote(cluster.region)}&notice={quote(notice)}"
    return redirect_after_post(request, url)


def _form_error(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    cluster: Cluster,
    form: str,
    values: dict[str, str],
    exc: ServiceError,
) -> Response:
    context = _detail_context(request, session, settings, principal, cluster)
    context["forms"][form] = FormState.refused(values, exc)
    template = f"readiness/_{form}_form.html" if is_htmx_partial(request) else "readiness/detail.html"
    return render(request, template, context, status_code=status_for(exc))


def _date(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value.strip(), "%Y-%m-%d").replace(hour=23, minute=59, tzinfo=dt.UTC)
    except ValueError:
        return None


@router.post("/clusters/{cluster}/exemptions", name="clusters.add_exemption")
def add_exemption_form(
    request: Request,
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    check_id: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
    region: str | None = None,
) -> Response:
    """Accept the risk of a finding (or of one object in it) until a date; audited."""
    row = records.find_cluster(session, cluster, region)
    values = {"check_id": check_id, "target": target, "reason": reason, "expires_on": expires_on}
    try:
        records.add_exemption(session, row, check_id=check_id, target=target, reason=reason,
                              expires_at=_date(expires_on), actor=actor_of(principal, request))  # fmt: skip
    except ReadinessInputError as exc:
        if "expires_at" in exc.errors:
            exc.errors["expires_on"] = exc.errors.pop("expires_at")
        return _form_error(request, session, settings, principal, row, "exemption", values, exc)
    return _done(request, row, f"Risk accepted for {check_id} until {expires_on}.")


@router.post("/clusters/{cluster}/exemptions/{exemption_id}/delete", name="clusters.remove_exemption")
def remove_exemption_form(
    request: Request, cluster: str, exemption_id: int, session: DbSession, principal: Admin,
    region: str | None = None,
) -> Response:  # fmt: skip
    """End an exemption now; audited."""
    row = records.find_cluster(session, cluster, region)
    records.remove_exemption(session, row, exemption_id, actor=actor_of(principal, request))
    return _done(request, row, "Exemption removed.")


@router.post("/clusters/{cluster}/attestations", name="clusters.add_attestation")
def add_attestation_form(
    request: Request,
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Responder,
    topic: Annotated[str, Form()] = "",
    statement: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
    region: str | None = None,
) -> Response:
    """A person confirms etcd backups, local DNS or a local registry, until a date; audited."""
    row = records.find_cluster(session, cluster, region)
    values = {"topic": topic, "statement": statement, "expires_on": expires_on}
    try:
        records.add_attestation(session, row, topic=topic, statement=statement, expires_at=_date(expires_on),
                                actor=actor_of(principal, request))  # fmt: skip
    except ReadinessInputError as exc:
        if "expires_at" in exc.errors:
            exc.errors["expires_on"] = exc.errors.pop("expires_at")
        return _form_error(request, session, settings, principal, row, "attestation", values, exc)
    return _done(request, row, f"Attested: {SPECS[topic].title}.")


POLL_WORDS = {
    "ok": "Polled now: the findings below are fresh.",
    "unreachable": "Polled now: the Kubernetes API did not answer (see Access).",
    "error": "The poll failed; the error is under Access.",
}


def _poll_now(request: Request, session: Session, principal: Principal, row: Cluster) -> str:
    from app.jobs.readiness import poll_clusters

    # The poll writes through its own sessions; the request's session writes only the audit event.
    outcomes = poll_clusters(
        request.app.state.settings, request.app.state.session_factory, cluster_ids=[row.id]
    )
    outcome = outcomes.get(f"{row.region}/{row.name}", "error")
    records.record_poll_now(session, row, outcome, actor=actor_of(principal, request))
    session.expire_all()
    return outcome


@router.post("/clusters/{cluster}/poll", name="clusters.poll_now")
def poll_now(
    request: Request,
    cluster: str,
    session: DbSession,
    principal: Responder,
    region: str | None = None,
) -> Response:
    """Poll this cluster's readiness now instead of waiting for the next interval; audited."""
    row = records.find_cluster(session, cluster, region)
    outcome = _poll_now(request, session, principal, row)
    return _done(request, row, POLL_WORDS.get(outcome, POLL_WORDS["error"]))


@router.post("/clusters/{cluster}/horizon", name="clusters.set_horizon")
def set_horizon_form(
    request: Request,
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    horizon_hours: Annotated[str, Form()] = "",
    region: str | None = None,
) -> Response:
    """Set the cluster's disconnect horizon (empty: the default); applies from the next poll."""
    row = records.find_cluster(session, cluster, region)
    values = {"horizon_hours": horizon_hours}
    try:
        hours = int(horizon_hours) if horizon_hours.strip() else None
    except ValueError:
        exc = ReadinessInputError({"horizon_hours": "a whole number of hours"})
        return _form_error(request, session, settings, principal, row, "horizon", values, exc)
    try:
        records.set_horizon(session, row, hours, actor=actor_of(principal, request))
    except ReadinessInputError as exc:
        return _form_error(request, session, settings, principal, row, "horizon", values, exc)
    label = f"{hours} h" if hours else f"the default ({settings.readiness_horizon_hours} h)"
    return _done(request, row, f"Disconnect horizon set to {label}; it applies from the next poll.")


# ---------------------------------------------------------------- API


def _finding_out(items: list[Any]) -> list[FindingOut]:
    return [FindingOut.model_validate(item) for item in items]


def _summary_out(view: ClusterView) -> ClusterReadinessOut:
    state = view.state
    cluster = view.cluster
    return ClusterReadinessOut(
        name=cluster.name,
        region=cluster.region,
        outpost_id=cluster.outpost.outpost_id if cluster.outpost else None,
        status=cluster.status,
        reachable=state.reachable if state else None,
        auth_path=state.auth_path if state else "none",
        reachability=view.reach.key,
        reachability_label=view.reach.label,
        x509_last_ok_at=view.reach.x509_last_ok_at,
        iam_error=state.iam_error if state else None,
        x509_error=state.x509_error if state else None,
        score=view.score,
        horizon_hours=view.horizon_hours,
        counts=view.counts,
        last_polled_at=state.last_polled_at if state else None,
        last_success_at=state.last_success_at if state else None,
        last_error=state.last_error if state else None,
        worst=_finding_out(to_json(worst(view.findings))),
    )


@router.get("/api/v1/clusters", response_model=list[ClusterReadinessOut], name="clusters.api_list")
def api_clusters(session: DbSession, settings: AppSettings, principal: Viewer) -> list[ClusterReadinessOut]:
    """Every cluster's readiness summary."""
    return [_summary_out(view) for view in records.cluster_views(session, settings)]


@router.post("/api/v1/clusters/{cluster}/poll", response_model=ClusterReadinessOut, name="clusters.api_poll")
def api_poll(
    request: Request,
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Responder,
    region: str | None = None,
) -> ClusterReadinessOut:
    """Poll one cluster's readiness now (audited); answers its summary after the poll."""
    row = records.find_cluster(session, cluster, region)
    _poll_now(request, session, principal, row)
    return _summary_out(records.cluster_view(session, settings, row))


@router.get("/api/v1/clusters/{cluster}", response_model=ClusterDetailOut, name="clusters.api_detail")
def api_cluster(
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Viewer,
    region: str | None = None,
) -> ClusterDetailOut:
    """One cluster: summary, nodes, collected facts, every finding, and 30 days of score history."""
    row = records.find_cluster(session, cluster, region)
    view = records.cluster_view(session, settings, row)
    history = [
        ScorePointOut(polled_at=s.polled_at, score=s.score, reachable=s.reachable, auth_path=s.auth_path)
        for s in records.score_history(session, row, days=30)
    ]
    return ClusterDetailOut(
        **dict(_summary_out(view)),
        nodes=list(view.state.nodes) if view.state else [],
        facts=dict(view.state.facts) if view.state else {},
        findings=_finding_out(to_json(view.findings)),
        history=history,
    )


@router.get("/api/v1/clusters/{cluster}/findings", name="clusters.api_findings", response_model=None)
def api_findings(
    cluster: str,
    session: DbSession,
    settings: AppSettings,
    principal: Viewer,
    region: str | None = None,
    export: Annotated[str, Query(alias="format", pattern="^(json|csv|sarif)$")] = "json",
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    severity: str | None = None,
    check: str | None = None,
) -> Response:
    """The cluster's findings (the `lifeline check --format json` shape), or CSV, or SARIF 2.1.0."""
    row = records.find_cluster(session, cluster, region)
    view = records.cluster_view(session, settings, row)
    findings = FindingFilter.parse(status_filter, severity, check, None).apply(view.findings)
    stem = f"readiness-{row.region}-{row.name}"
    if export == "csv":
        return Response(to_csv(findings), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'})  # fmt: skip
    if export == "sarif":
        body = dumps(to_sarif(findings, artifact_uri=f"cluster/{row.region}/{row.name}"))
        return Response(body, media_type="application/sarif+json",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.sarif"'})  # fmt: skip
    return JSONResponse(to_json(findings))
