"""HTTP routes for Lifeline's own cluster identities (revoke, enable again) and the issue form's
"can issuing work now" notice. Cluster work goes through `app.services.credentials.runs`."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from app.models import Cluster
from app.services.credentials import runs
from app.services.credentials.paths import issuing_path
from app.services.credentials.vocabulary import CredentialNotFound
from app.web.deps import AppSettings, DbSession, OptionalRowIdQuery, RowId, end_request_transaction
from app.web.security import Admin, Responder, actor_of
from app.web.templating import redirect_after_post, render

router = APIRouter()


def _factory(request: Request) -> sessionmaker[Session]:
    end_request_transaction(request)
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def _cluster(db: Session, cluster_id: int) -> Cluster:
    cluster = db.get(Cluster, cluster_id)
    if cluster is None:
        raise CredentialNotFound(f"cluster {cluster_id} does not exist")
    return cluster


def _back(request: Request, cluster: Cluster, notice: str) -> Response:
    url = str(request.url_for("clusters.detail", cluster=cluster.name))
    url += f"?region={quote(cluster.region)}&notice={quote(notice)}"
    return redirect_after_post(request, url + "#cluster-identities")


@router.get("/credentials/new/issuing-path", name="identities.issuing_path")
def issuing_path_notice(
    request: Request,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
    cluster: OptionalRowIdQuery = None,
) -> Response:
    """The issue form's notice: whether issuing on the chosen cluster can work now, and why (HTMX)."""
    row = db.get(Cluster, cluster) if cluster is not None else None
    context = {"issuing_path": issuing_path(db, settings, row)}
    return render(
        request, "credentials/_issuing_path.html", context, partial="credentials/_issuing_path.html"
    )


@router.post("/clusters/{cluster_id}/identities/{purpose}/revoke", name="identities.revoke")
def revoke(
    cluster_id: RowId, purpose: str, request: Request, principal: Admin, db: DbSession, settings: AppSettings
) -> Response:
    """Delete the identity's binding and keep the upkeep job from bringing it back (audited)."""
    cluster = _cluster(db, cluster_id)
    name = cluster.name
    runs.revoke_identity(settings, _factory(request), cluster_id, purpose, actor_of(principal, request))
    return _back(request, cluster, f"lifeline:{purpose} on {name} revoked.")


@router.post("/clusters/{cluster_id}/identities/{purpose}/enable", name="identities.enable")
def enable(
    cluster_id: RowId,
    purpose: str,
    request: Request,
    background: BackgroundTasks,
    principal: Admin,
    db: DbSession,
    settings: AppSettings,
) -> Response:
    """Let Lifeline create the identity again; the upkeep runs at once in the background."""
    cluster = _cluster(db, cluster_id)
    runs.enable_identity(settings, _factory(request), cluster_id, purpose, actor_of(principal, request))
    background.add_task(runs.upkeep_identities, settings, _factory(request))
    return _back(request, cluster, f"lifeline:{purpose} enabled again; Lifeline is issuing it now.")


__all__ = ["router"]
