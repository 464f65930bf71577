"""The overview page (`/`): every Outpost's state, uptime and 24-hour strip, refreshed by HTMX.

The table fragment is cached per query for a few seconds and keyed on the data version
(`app.web.page_cache`: latest poll runs, fleet edits), so many open dashboards cost one render per
poll, not one per view. Only the fragment is cached: the page around it (user box, CSRF token) is
rendered per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.models import Cluster
from app.services.connectivity import paging, queries, site
from app.services.connectivity.status import STATE_LABELS, STATES, Vantage
from app.services.credentials.reach import PROBLEM_STATES
from app.settings import Settings
from app.web.access import cut_off_banner, title_prefix_for_template
from app.web.connectivity.axis import ticks
from app.web.connectivity.windows import window_cells
from app.web.deps import AppSettings, DbSession
from app.web.page_cache import data_version, for_sign_in_async, process_version, shared_cache
from app.web.security import Role, requires
from app.web.templating import is_htmx_partial, render, templates

router = APIRouter()
log = logging.getLogger(__name__)


def overview_query(filters: dict[str, str], **changes: str) -> str:
    """The overview's query string with some parameters changed (empty values dropped)."""
    merged = {**filters, **changes}
    # Defaults stay out of the URL; any other change of filters starts again at page 1.
    if "page" not in changes:
        merged.pop("page", None)
    for name, default in (("sort", "state"), ("group", "region"), ("page", "1")):
        if merged.get(name) == default:
            merged.pop(name)
    query = urlencode({k: v for k, v in merged.items() if v})
    return "/?" + query if query else "/"


def sort_link(filters: dict[str, str], key: str) -> str:
    """Clicking the current sort column reverses it."""
    current = filters.get("sort", "state")
    return overview_query(filters, sort=("-" + key) if current == key else key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class StripTick:
    label: str
    major: bool
    # Position along the strip, in percent of its 48 buckets.
    pct: float


def strip_ticks(now: dt.datetime) -> list[StripTick]:
    """The overview strip's axis: round-time ticks over the strip's buckets, none after now."""
    width = queries.STRIP_BUCKET_SECONDS
    end = dt.datetime.fromtimestamp(-(-now.timestamp() // width) * width, dt.UTC)
    origin = end - dt.timedelta(seconds=queries.STRIP_BUCKETS * width)
    span = (end - origin).total_seconds()
    return [
        StripTick(t.label, t.major, round(100 * (t.at - origin).total_seconds() / span, 2))
        for t in ticks(origin, now, max_ticks=5)
    ]


@router.get(
    "/",
    name="overview.index",
    response_class=HTMLResponse,
    dependencies=[Depends(requires(Role.viewer))],
)
async def index(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    state: str | None = Query(None, description="Only Outposts in this state."),
    region: str | None = Query(None, description="Only Outposts in this region."),
    sort: str = Query("state", description="state, name, region, since, age or uptime; '-' reverses."),
    page: str = Query("1", description="Which page of rows (1 is the worst first)."),
    group: str = Query("region", description="region (counts per region above the rows) or none."),
) -> Response:
    # The whole answer is reused for this sign-in and URL until the data changes (page_cache); a
    # reused one is answered on the event loop, a build runs in the thread pool.
    return await for_sign_in_async(
        request, session, lambda: _index(request, session, settings, state, region, sort, page, group)
    )


def _index(
    request: Request,
    session: Session,
    settings: Settings,
    state: str | None,
    region: str | None,
    sort: str,
    page: str,
    group: str,
) -> Response:
    state = state.upper() if state else None
    filters = {"state": state or "", "region": region or "", "sort": sort, "group": group, "page": page}
    problems = []
    page_number = int(page) if page.isdigit() and int(page) >= 1 else 0
    if not page_number:
        problems.append(f"page must be a whole number from 1 (got {page!r})")
    if group not in paging.GROUPS:
        problems.append(f"group must be one of {', '.join(paging.GROUPS)} (got {group!r})")
    if state and state not in STATES:
        problems.append(f"state must be one of {', '.join(STATES)} (got {state!r})")
    if sort.lstrip("-") not in queries.SORTS:
        problems.append(f"sort must be one of {', '.join(queries.SORTS)} (got {sort!r})")
    if problems:
        return render(
            request,
            "connectivity/overview.html",
            {
                "problems": problems,
                "fragment": None,
                "filters": filters,
                "regions": [],
                "states": STATE_LABELS,
            },
            partial="connectivity/_overview_table.html",
            status_code=422,
        )

    now = _now()
    status_code = 200
    try:
        cache = shared_cache(request, "overview")
        fingerprint = data_version(request, session)
        key = (state, region, sort, page_number, group, settings.overview_refresh_seconds)

        def render_fragment() -> tuple[list[str], str]:
            data, verdicts = _overview_with_site_view(
                session,
                settings.vantage,
                now,
                state,
                region,
                sort,
                page=page_number,
                page_size=settings.overview_page_size,
                group=group,
            )
            context = {
                "request": request,
                "problem_clusters": _problem_clusters(session, data.rows, verdicts),
                "ov": data,
                "verdicts": verdicts,
                "vantage": settings.vantage,
                "now": now,
                "filters": filters,
                "states": STATE_LABELS,
                "poll_interval": settings.poll_interval_seconds,
                "refresh_seconds": settings.overview_refresh_seconds,
                "sort_link": sort_link,
                "overview_query": overview_query,
                "strip_ticks": strip_ticks(now),
                "window_cells": window_cells,
            }
            return data.regions, templates.get_template("connectivity/_overview_table.html").render(context)

        regions, fragment = cache.get_or_render(key, fingerprint, render_fragment)
    except SQLAlchemyError as exc:
        log.exception("overview: database error")
        # PostgreSQL refuses every later statement of an aborted transaction (and the commit).
        session.rollback()
        fragment = None
        regions = []
        status_code = 503
        problems = [f"Could not read the database ({type(exc).__name__}): {str(exc).splitlines()[0]}"]

    if is_htmx_partial(request) and fragment is not None:
        # The refresh also carries the tab title (htmx applies a <title> in a response) and the
        # cut-off banner (out of band), so a disconnect shows outside the table without a reload.
        return HTMLResponse(_live_extras(request) + fragment, headers={"Vary": "HX-Request"})
    return render(
        request,
        "connectivity/overview.html",
        {
            "fragment": Markup(fragment) if fragment is not None else None,  # noqa: S704 (our own render)
            "problems": problems,
            "filters": filters,
            "regions": regions,
            "states": STATE_LABELS,
        },
        partial="connectivity/_overview_table.html",
        status_code=status_code,
        headers={"Vary": "HX-Request"},
    )


def _problem_clusters(
    session: Session, rows: list[Any], verdicts: dict[int, site.Verdict]
) -> dict[int, list[Cluster]]:
    """The clusters of the rows that are disconnected or degraded now (one read), for their links."""
    pks = [r.outpost.id for r in rows if verdicts[r.outpost.id].state in PROBLEM_STATES]
    if not pks:
        return {}
    found: dict[int, list[Cluster]] = {}
    for cluster in session.scalars(select(Cluster).where(Cluster.outpost_pk.in_(pks)).order_by(Cluster.name)):
        found.setdefault(cluster.outpost_pk or 0, []).append(cluster)
    return found


def _live_extras(request: Request) -> str:
    title = escape(f"{title_prefix_for_template(request)}Connectivity · Lifeline")
    return f"<title>{title}</title>\n{cut_off_banner(request, oob=True)}\n"


def _overview_with_site_view(
    session: DbSession,
    vantage: str,
    now: dt.datetime,
    state: str | None,
    region: str | None,
    sort: str,
    *,
    page: int = 1,
    page_size: int = 50,
    group: str = "region",
) -> tuple[queries.Overview, dict[int, site.Verdict]]:
    """The overview with each row's state and "since" from the faster of CloudWatch and the site
    view (issue 13); filters, the state sort and the tiles follow the same verdicts.

    The state filter follows the site verdicts, which the database cannot filter on: with one, the
    whole region is read and filtered here, unpaged (issue 20's paging applies without it)."""
    if state:
        page, page_size = 1, 1_000_000
    data = queries.overview(
        session, now, state=None, region=region, sort=sort, page=page, page_size=page_size, group=group
    )
    verdicts = site.verdicts(session, vantage, [row.outpost for row in data.rows])
    everyone = verdicts if not region else site.verdicts(session, vantage, queries.list_outposts(session))
    rows = site.apply_to_rows(data.rows, verdicts, state=state, sort=sort)
    matching = len(rows) if state else data.matching
    return (
        dataclasses.replace(data, rows=rows, counts=site.count_verdicts(everyone), matching=matching),  # type: ignore[arg-type]
        verdicts,
    )


def _page_session(request: Request, factory: Any) -> Callable[[], AbstractContextManager[Session]]:
    """The request's own session when the page has one (no second connection per render), else a
    short one of its own (error pages rendered outside a request's transaction)."""
    own: Session | None = getattr(request.state, "db_session", None)
    if own is not None:
        return lambda: nullcontext(own)
    return lambda: factory()  # type: ignore[no-any-return]


def vantage_for_template(request: Request) -> Vantage | None:
    """The dashboard's own view of AWS, for the banner on every page (`aws_vantage`); never breaks a page.

    The site probes decide when they are fresh (issue 13); otherwise the poll runs do, and that
    answer only changes when a connectivity run starts or finishes, so it is kept per newest runs.
    """
    factory = getattr(request.app.state, "session_factory", None)
    if factory is None:
        return None
    reading = _page_session(request, factory)
    settings = getattr(request.app.state, "settings", None)
    if settings is not None and settings.probes_enabled:
        # The site probes answer within seconds; the poll runs decide only when they are stale.
        # One indexed read (probe_results' unique key leads with vantage and kind), shared briefly.
        # Kept per process like the data version (2 s, or until a commit that wrote).
        def probe() -> Vantage | None:
            with reading() as session:
                fresh = dt.timedelta(seconds=5 * settings.probe_interval_seconds)
                return site.probe_vantage(session, settings.vantage, _now(), fresh)

        try:
            probed = process_version(request).remember(
                "probe_vantage", probe, fresh=settings.overview_cache_seconds <= 0
            )
        except SQLAlchemyError:
            probed = None
        if probed is not None:
            return probed
    cached: tuple[object, Vantage] | None = getattr(request.app.state, "vantage_cache", None)
    known = getattr(request.state, "poll_marker", None)
    if cached is not None and known is not None and cached[0] == known:
        return cached[1]
    try:
        with reading() as session:
            newest = queries.poll_runs_marker(session)
            if cached is not None and cached[0] == newest:
                return cached[1]
            vantage = queries.dashboard_vantage(session, _now())
            request.app.state.vantage_cache = (newest, vantage)
            return vantage
    except SQLAlchemyError:
        log.warning("vantage banner: database not readable", exc_info=True)
        return None
