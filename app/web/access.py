"""A way in from every place that shows a problem: the "Your access" view (`/access`, filtered to one
Outpost or cluster it is the "Get in" page), the cut-off banner on every page, and the access panel
(`templates/credentials/_access_panel.html`) that pages include for the signed-in person.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.routing import APIRouter
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload
from starlette.responses import Response

from app.models import Cluster, Outpost
from app.services.credentials import reach
from app.services.credentials.vocabulary import failure_phrase
from app.services.errors import NotFound
from app.web.deps import AppSettings, DbSession, OptionalRowIdQuery
from app.web.page_cache import data_version, shared_cache
from app.web.security import Role, Viewer, actor_of, now_utc
from app.web.templating import render, templates

router = APIRouter()
log = logging.getLogger(__name__)

STATE_WORDS = {"DISCONNECTED": "disconnected", "DEGRADED": "degraded"}


def _cut_off(request: Request) -> list[reach.CutOff]:
    """The Outposts cut off now, read once per request (banner, title and panels share it)."""
    cached: list[reach.CutOff] | None = getattr(request.state, "cut_off", None)
    if cached is not None:
        return cached
    found: list[reach.CutOff] = []
    session = getattr(request.state, "db_session", None)
    settings = getattr(request.app.state, "settings", None)
    if session is not None and settings is not None:
        try:
            found = _cut_off_shared(request, session, settings.vantage)
        except SQLAlchemyError:
            log.warning("cut-off banner: database not readable", exc_info=True)
    request.state.cut_off = found
    return found


def _cut_off_shared(request: Request, session: Session, vantage: str) -> list[reach.CutOff]:
    """The banner's Outposts, shared by every request of this process while the data version is
    unchanged (`page_cache`: newest poll runs, Outpost, cluster and drill edits, site views), for
    at most `LIFELINE_OVERVIEW_CACHE_SECONDS` (0 reads them on every request). The list itself
    reads every cut-off Outpost with its clusters and verdicts."""
    return shared_cache(request, "cut_off").get_or_render(
        (vantage,), data_version(request, session), lambda: reach.cut_off_outposts(session, vantage)
    )


def cut_off_for_template(request: Request) -> list[reach.CutOff]:
    """`cut_off_now(request)` in templates: never breaks a page (no principal, no database: none)."""
    if getattr(request.state, "principal", None) is None:
        return []
    return _cut_off(request)


def title_prefix(found: list[reach.CutOff]) -> str:
    """`(1) Disconnected · ` for the tab title (degraded Outposts counted too, after them)."""
    parts = []
    for state, word in (("DISCONNECTED", "Disconnected"), ("DEGRADED", "Degraded")):
        count = sum(1 for item in found if item.state == state)
        if count:
            parts.append(f"({count}) {word}")
    return (", ".join(parts) + " · ") if parts else ""


def title_prefix_for_template(request: Request) -> str:
    return _banner(request, oob=False)[0]


def cut_off_banner(request: Request, *, oob: bool = False) -> Markup:
    """`cut_off_banner(request)` in templates: the banner's markup (`layout/_cutoff_banner.html`),
    the same for every signed-in person, so rendered once per data version and shared like its
    list (at 5,000 Outposts a bad hour lists hundreds, and every page of the app shows it).
    `oob` is the HTMX refresh's out-of-band copy."""
    return _banner(request, oob=oob)[1]


def _banner(request: Request, *, oob: bool) -> tuple[str, Markup]:
    """The tab title's prefix and the banner's markup, for this request's cut-off list."""
    found = cut_off_for_template(request)

    def make() -> tuple[str, Markup]:
        html = templates.get_template("layout/_cutoff_banner.html").render(
            {"request": request, "found": found, "oob": oob}
        )
        # Our own template (autoescaped) over our own list, not input.
        return title_prefix(found), Markup(html)  # noqa: S704

    version = getattr(request.state, "data_version", None)
    if not found or version is None:
        return make()  # nobody cut off (an empty banner), signed out, or no database read
    settings = request.app.state.settings
    return shared_cache(request, "cut_off_banner").get_or_render((settings.vantage, oob), version, make)


def way_for_template(request: Request, cluster: Cluster) -> reach.Way | None:
    """The signed-in person's way into `cluster`, for the access panel (None when signed out)."""
    principal = getattr(request.state, "principal", None)
    session = getattr(request.state, "db_session", None)
    if principal is None or session is None:
        return None
    problems = reach.cut_off_clusters(_cut_off(request))
    return reach.ways_in(session, actor_of(principal, request), [cluster], now_utc(request), problems)[0]


def _clusters_for(
    db: DbSession, outpost: str | None, cluster: int | None
) -> tuple[list[Cluster], Outpost | None]:
    if cluster is not None:
        row = db.get(Cluster, cluster)
        if row is None:
            raise NotFound(f"no cluster with id {cluster}")
        return [row], None
    if outpost:
        found = db.scalar(
            select(Outpost).where(Outpost.outpost_id == outpost).options(selectinload(Outpost.clusters))
        )
        if found is None:
            raise NotFound(f"no Outpost {outpost!r}")
        return sorted(found.clusters, key=lambda c: c.name), found
    return [], None


@router.get("/access", name="access.index")
def index(
    request: Request,
    principal: Viewer,
    db: DbSession,
    settings: AppSettings,
    outpost: str | None = None,
    cluster: OptionalRowIdQuery = None,
) -> Response:
    """Your access: every cluster you can reach if the Region goes away now, and until when; the others
    with what to do while it is still reachable. With `outpost` or `cluster`: the "Get in" page."""
    now = now_utc(request)
    actor = actor_of(principal, request)
    found = _cut_off(request)
    clusters, outpost_row = _clusters_for(db, outpost, cluster)
    if outpost is not None or cluster is not None:
        ways = reach.ways_in(db, actor, clusters, now, reach.cut_off_clusters(found))
        access = reach.Access(ways)
    else:
        access = reach.your_access(db, actor, settings.vantage, now)
    context: dict[str, Any] = {
        "access": access,
        "filtered": outpost is not None or cluster is not None,
        "outpost": outpost_row,
        "now": now,
        "can_issue": principal.role.allows(Role.responder),
        "state_words": STATE_WORDS,
        "failure_phrase": failure_phrase,
    }
    return render(request, "credentials/access.html", context)


__all__ = [
    "cut_off_for_template",
    "router",
    "title_prefix",
    "title_prefix_for_template",
    "way_for_template",
]
