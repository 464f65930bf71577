"""HTTP routes for the fleet: the Fleet page with its add/remove forms, and /api/v1/fleet.

Viewers see the fleet; admins change it. A refused form re-renders with its field errors and the
refusal's status (422 invalid, 404 missing, 409 conflict: what the API answers); success answers
HX-Redirect for HTMX and 303 otherwise. API refusals propagate to `app.web.errors`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, status
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.models import Cluster, Outpost
from app.schemas import (
    ClusterCreate,
    FleetClusterOut,
    FleetOut,
    FleetOutpostOut,
    HealthIssueOut,
    OutpostCreate,
    OutpostUpdate,
    PollRunOut,
)
from app.services.errors import ServiceError
from app.services.fleet import inventory
from app.services.fleet.discovery import DISCOVERY_JOB, FLEET_FILE_JOB, configured_regions, latest_runs
from app.settings import Settings
from app.web.deps import AppSettings, DbSession
from app.web.errors import status_for
from app.web.forms import FormState
from app.web.security import Admin, Principal, Role, Viewer, actor_of, requires
from app.web.templating import is_htmx_partial, redirect_after_post, render

router = APIRouter()


EXAMPLE_FLEET_FILE = """\
outposts:
  - id: op-0123456789abcdef0
    name: Plant 7, rack A
    region: us-west-2
    account: "123456789012"   # optional: owner account
clusters:
  - name: plant7-local
    region: us-west-2
    outpost: op-0123456789abcdef0
discovery:
  regions: [us-west-2]
"""

OUTPOST_FIELDS = ("outpost_id", "name", "region", "account_id")
CLUSTER_FIELDS = ("name", "region", "outpost_id")


# ---------------------------------------------------------------- page


def _page_context(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    **extra: Any,
) -> dict[str, Any]:
    regions, file_error = configured_regions(settings.fleet_file, settings.aws_regions)
    context: dict[str, Any] = {
        "outposts": inventory.list_outposts(session),
        "clusters": inventory.list_clusters(session),
        "discovery_regions": regions,
        "discovery_runs": latest_runs(session, DISCOVERY_JOB),
        "fleet_file": settings.fleet_file,
        "fleet_file_runs": latest_runs(session, FLEET_FILE_JOB),
        "fleet_file_error": file_error,
        "example_fleet_file": EXAMPLE_FLEET_FILE,
        "can_edit": principal.role.allows(Role.admin),
        "notice": request.query_params.get("notice", "")[:200],
        "outpost_form": FormState(),
        "cluster_form": FormState(),
        "rename_form": FormState(),
        "error": None,
    }
    context.update(extra)
    return context


@router.get("/fleet", name="fleet.index")
def fleet_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Viewer,
) -> Response:
    """The fleet: Outposts, clusters, where each came from, and the last discovery runs."""
    context = _page_context(request, session, settings, principal)
    return render(request, "fleet/index.html", context, partial="fleet/_content.html")


def _done(request: Request, notice: str) -> Response:
    url = str(request.url_for("fleet.index")) + "?notice=" + quote(notice)
    return redirect_after_post(request, url)


def _form_error(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    form: str,
    values: dict[str, str],
    exc: ServiceError,
) -> Response:
    """Re-render with the refusal's status: the form alone for HTMX, the whole page otherwise."""
    context = _page_context(request, session, settings, principal, **{form: FormState.refused(values, exc)})
    partial = f"fleet/_{form}.html"
    template = partial if is_htmx_partial(request) else "fleet/index.html"
    return render(request, template, context, status_code=status_for(exc))


@router.post("/fleet/outposts", name="fleet.add_outpost")
def add_outpost_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    outpost_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    account_id: Annotated[str, Form()] = "",
) -> Response:
    values = {"outpost_id": outpost_id, "name": name, "region": region, "account_id": account_id}
    try:
        inventory.add_outpost(
            session,
            outpost_id=outpost_id,
            name=name,
            region=region,
            account_id=account_id or None,
            actor=actor_of(principal, request),
        )
    except ServiceError as exc:
        return _form_error(request, session, settings, principal, form="outpost_form", values=values, exc=exc)
    return _done(request, f"Added Outpost {outpost_id.strip()}.")


@router.post("/fleet/outposts/edit", name="fleet.update_outpost")
def update_outpost_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    outpost_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    account_id: Annotated[str, Form()] = "",
) -> Response:
    values = {"outpost_id": outpost_id, "name": name, "account_id": account_id}
    try:
        if not outpost_id:
            raise inventory.FleetValidationError({"outpost_id": "choose an Outpost"})
        inventory.update_outpost(
            session, outpost_id, name=name or None, account_id=account_id, actor=actor_of(principal, request)
        )
    except ServiceError as exc:
        return _form_error(request, session, settings, principal, form="rename_form", values=values, exc=exc)
    return _done(request, f"Updated Outpost {outpost_id}.")


@router.post("/fleet/clusters", name="fleet.add_cluster")
def add_cluster_form(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
    name: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
    outpost_id: Annotated[str, Form()] = "",
) -> Response:
    values = {"name": name, "region": region, "outpost_id": outpost_id}
    try:
        inventory.add_cluster(
            session,
            name=name,
            region=region,
            outpost_id=outpost_id or None,
            actor=actor_of(principal, request),
        )
    except ServiceError as exc:
        return _form_error(request, session, settings, principal, form="cluster_form", values=values, exc=exc)
    return _done(request, f"Added cluster {name.strip()} in {region.strip()}.")


def _removal_failed(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    exc: ServiceError,
) -> Response:
    context = _page_context(request, session, settings, principal, error=exc.message)
    return render(
        request, "fleet/index.html", context, partial="fleet/_content.html", status_code=status_for(exc)
    )


@router.post("/fleet/outposts/{outpost_id}/delete", name="fleet.remove_outpost")
def remove_outpost_form(
    request: Request,
    outpost_id: str,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
) -> Response:
    try:
        inventory.remove_outpost(session, outpost_id, actor=actor_of(principal, request))
    except ServiceError as exc:
        return _removal_failed(request, session, settings, principal, exc)
    return _done(request, f"Removed Outpost {outpost_id}.")


@router.post("/fleet/clusters/{region}/{name}/delete", name="fleet.remove_cluster")
def remove_cluster_form(
    request: Request,
    region: str,
    name: str,
    session: DbSession,
    settings: AppSettings,
    principal: Admin,
) -> Response:
    try:
        inventory.remove_cluster(session, name, region, actor=actor_of(principal, request))
    except ServiceError as exc:
        return _removal_failed(request, session, settings, principal, exc)
    return _done(request, f"Removed cluster {name} in {region}.")


# ---------------------------------------------------------------- JSON API


def outpost_out(outpost: Outpost) -> FleetOutpostOut:
    return FleetOutpostOut(
        outpost_id=outpost.outpost_id,
        name=outpost.name,
        region=outpost.region,
        account_id=outpost.account_id,
        source=outpost.source,
        state=outpost.state,
        clusters=[c.name for c in outpost.clusters],
        created_at=outpost.created_at,
        updated_at=outpost.updated_at,
    )


def cluster_out(cluster: Cluster) -> FleetClusterOut:
    return FleetClusterOut(
        name=cluster.name,
        region=cluster.region,
        outpost_id=cluster.outpost.outpost_id if cluster.outpost else None,
        source=cluster.source,
        cluster_uid=cluster.cluster_uid,
        endpoint=cluster.endpoint,
        status=cluster.status,
        platform_version=cluster.platform_version,
        kubernetes_version=cluster.kubernetes_version,
        control_plane_instance_type=cluster.control_plane_instance_type,
        health_issues=[HealthIssueOut.model_validate(issue) for issue in cluster.health_issues or []],
        has_certificate_authority=bool(cluster.certificate_authority),
        described_at=cluster.described_at,
    )


@router.get(
    "/api/v1/fleet",
    name="fleet.api_list",
    response_model=FleetOut,
    dependencies=[Depends(requires(Role.viewer))],
    tags=["fleet"],
)
def api_fleet(session: DbSession, settings: AppSettings) -> FleetOut:
    """Every Outpost and cluster with its source, and the latest discovery and fleet-file runs."""
    regions, _ = configured_regions(settings.fleet_file, settings.aws_regions)
    return FleetOut(
        outposts=[outpost_out(o) for o in inventory.list_outposts(session)],
        clusters=[cluster_out(c) for c in inventory.list_clusters(session)],
        discovery_regions=regions,
        discovery_runs=[PollRunOut.model_validate(r) for r in latest_runs(session, DISCOVERY_JOB)],
        fleet_file=str(settings.fleet_file) if settings.fleet_file else None,
        fleet_file_runs=[PollRunOut.model_validate(r) for r in latest_runs(session, FLEET_FILE_JOB)],
    )


@router.post(
    "/api/v1/fleet/outposts",
    name="fleet.api_add_outpost",
    response_model=FleetOutpostOut,
    status_code=status.HTTP_201_CREATED,
    tags=["fleet"],
    responses={409: {"description": "Already exists"}},
)
def api_add_outpost(
    request: Request, body: OutpostCreate, session: DbSession, principal: Admin
) -> FleetOutpostOut:
    """Add an Outpost (source: manual). A discovered Outpost with the same ID is taken over."""
    outpost = inventory.add_outpost(
        session,
        outpost_id=body.outpost_id,
        name=body.name,
        region=body.region,
        account_id=body.account_id,
        actor=actor_of(principal, request),
    )
    session.refresh(outpost)
    return outpost_out(outpost)


@router.patch(
    "/api/v1/fleet/outposts/{outpost_id}",
    name="fleet.api_update_outpost",
    response_model=FleetOutpostOut,
    tags=["fleet"],
    responses={404: {"description": "No such Outpost"}, 409: {"description": "Managed by the fleet file"}},
)
def api_update_outpost(
    request: Request, outpost_id: str, body: OutpostUpdate, session: DbSession, principal: Admin
) -> FleetOutpostOut:
    """Rename an Outpost or set its account (not file-managed ones: edit the file)."""
    account: str | None = None
    if "account_id" in body.model_fields_set:
        account = body.account_id or ""
    outpost = inventory.update_outpost(
        session, outpost_id, name=body.name, account_id=account, actor=actor_of(principal, request)
    )
    session.refresh(outpost)
    return outpost_out(outpost)


@router.delete(
    "/api/v1/fleet/outposts/{outpost_id}",
    name="fleet.api_remove_outpost",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["fleet"],
    responses={404: {"description": "No such Outpost"}, 409: {"description": "Managed by the fleet file"}},
)
def api_remove_outpost(request: Request, outpost_id: str, session: DbSession, principal: Admin) -> Response:
    """Remove an Outpost and its connectivity history (not file-managed ones)."""
    inventory.remove_outpost(session, outpost_id, actor=actor_of(principal, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/v1/fleet/clusters",
    name="fleet.api_add_cluster",
    response_model=FleetClusterOut,
    status_code=status.HTTP_201_CREATED,
    tags=["fleet"],
    responses={409: {"description": "Already exists"}},
)
def api_add_cluster(
    request: Request, body: ClusterCreate, session: DbSession, principal: Admin
) -> FleetClusterOut:
    """Add a local cluster (source: manual), optionally on a known Outpost."""
    cluster = inventory.add_cluster(
        session,
        name=body.name,
        region=body.region,
        outpost_id=body.outpost_id,
        actor=actor_of(principal, request),
    )
    return cluster_out(cluster)


@router.delete(
    "/api/v1/fleet/clusters/{region}/{name}",
    name="fleet.api_remove_cluster",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["fleet"],
    responses={404: {"description": "No such cluster"}, 409: {"description": "Managed by the fleet file"}},
)
def api_remove_cluster(
    request: Request, region: str, name: str, session: DbSession, principal: Admin
) -> Response:
    """Remove a cluster (not file-managed ones)."""
    inventory.remove_cluster(session, name, region, actor=actor_of(principal, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
