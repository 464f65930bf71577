"""One Outpost's page (timeline chart, incidents, uptime, CSV export) and the connectivity JSON API
under /api/v1/outposts."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, StreamingResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app import schemas
from app.models import Outpost, PollRun
from app.services.audit import record_audit
from app.services.connectivity import paging, queries, site
from app.services.connectivity.status import STATES, Uptime
from app.services.csv_cells import SafeWriter
from app.services.drills import uptime as drill_uptime
from app.services.drills.lifecycle import list_drills
from app.services.errors import InvalidInput, NotFound
from app.services.fleet import inventory
from app.web.connectivity.chart import timeline_svg
from app.web.connectivity.windows import window_cells
from app.web.deps import DbSession
from app.web.page_cache import data_version, for_sign_in_async, reusable_now, shared_cache
from app.web.security import Principal, Responder, Role, Viewer, actor_of, requires
from app.web.templating import redirect_after_post, render, templates

router = APIRouter()
viewer = [Depends(requires(Role.viewer))]

# Samples are 60-second datapoints: 31 days is ~45,000 rows per request, the most one answer holds.
MAX_SAMPLE_RANGE = dt.timedelta(days=31)
DEFAULT_SAMPLE_RANGE = dt.timedelta(hours=24)

StartParam = Annotated[
    dt.datetime | None,
    Query(description="ISO 8601 start (inclusive); default: 24 h before `end`. No offset means UTC."),
]
EndParam = Annotated[dt.datetime | None, Query(description="ISO 8601 end (exclusive); default: now.")]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _invalid(
    location: tuple[str, ...], message: str, value: object = None, choices: list[str] | None = None
) -> RequestValidationError:
    """A 422 naming the parameter; with `choices`, the error page links to each valid value."""
    error = {"loc": location, "msg": message, "type": "value_error", "input": value}
    if choices:
        error["ctx"] = {"choices": choices}
    return RequestValidationError([error])


def _outpost_or_error(session: DbSession, outpost_id: str, *, with_clusters: bool = False) -> Outpost:
    """422 for an ID that cannot be an Outpost's, 404 for one that is not in the fleet."""
    canonical = queries.normalize_outpost_id(outpost_id)
    if canonical is None:
        raise _invalid(
            ("path", "outpost_id"),
            "outpost_id must be 'op-' followed by 17 hex digits, e.g. op-0123456789abcdef0 "
            f"(got {outpost_id!r})",
            outpost_id,
        )
    outpost = inventory.get_outpost_or_none(session, canonical, with_clusters=with_clusters)
    if outpost is None:
        raise NotFound(f"No Outpost {canonical} in the fleet. Add it on the Fleet page, or check the ID.")
    return outpost


def _sample_range(
    start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    end = _aware(end) if end else now
    start = _aware(start) if start else end - DEFAULT_SAMPLE_RANGE
    if start >= end:
        raise _invalid(
            ("query", "start"), f"start ({start.isoformat()}) must be before end ({end.isoformat()})"
        )
    if end - start > MAX_SAMPLE_RANGE:
        raise _invalid(
            ("query", "end"),
            f"range {end - start} is longer than the {MAX_SAMPLE_RANGE.days}-day maximum; "
            "request it in parts",
        )
    return start, end


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _uptime_windows(uptime: dict[str, Uptime]) -> tuple[schemas.UptimeWindows, schemas.UptimeWindows]:
    ratios = {w: (u.ratio if u.ratio is None else round(u.ratio, 6)) for w, u in uptime.items()}
    unknown = {w: round(u.unknown_seconds, 1) for w, u in uptime.items()}
    return schemas.UptimeWindows.model_validate(ratios), schemas.UptimeWindows.model_validate(unknown)


def _outpost_out(request: Request, outpost: Outpost, uptime: dict[str, Uptime]) -> schemas.OutpostOut:
    ratios, unknown = _uptime_windows(uptime)
    return schemas.OutpostOut(
        outpost_id=outpost.outpost_id,
        name=outpost.name,
        region=outpost.region,
        account_id=outpost.account_id,
        state=outpost.state,
        state_since=outpost.state_since,
        last_sample_at=outpost.last_sample_at,
        last_value=outpost.last_value,
        last_error=outpost.last_error,
        last_error_at=outpost.last_error_at,
        uptime=ratios,
        unknown_seconds=unknown,
        uptime_as_of=max((u.end for u in uptime.values()), default=None),
        drill_seconds={w: round(u.drill_seconds, 1) for w, u in uptime.items() if u.drill_seconds},
        url=str(request.url_for("outposts.detail", outpost_id=outpost.outpost_id)),
    )


def _incident_out(view: queries.IncidentView) -> schemas.IncidentOut:
    return schemas.IncidentOut(
        started_at=view.incident.started_at,
        ended_at=view.incident.ended_at,
        ongoing=view.ongoing,
        duration_seconds=view.duration_seconds,
        worst_value=view.incident.worst_value,
    )


def _poll_out(run: PollRun | None) -> schemas.PollStatusOut | None:
    if run is None:
        return None
    return schemas.PollStatusOut(finished_at=run.finished_at, outcome=run.outcome, error=run.error)


# ---------------------------------------------------------------- pages


def _detail_data(
    request: Request, session: DbSession, outpost: Outpost, range_key: str, vantage: str
) -> dict[str, Any]:
    """The Outpost page's reads (chart, uptime, incidents, drills, site view) and its history
    section rendered from them: the same for everyone."""
    now = _now()
    chart = queries.timeline(session, outpost, range_key, now)
    uptime = queries.uptime_by_outpost(session, [outpost.id], now)[outpost.id]
    incidents = queries.list_incidents(session, outpost.id, now)
    last_run, _ = queries.latest_poll_runs(session)
    span = queries.RANGES[range_key][0]
    data = {
        "verdict": site.verdict(
            outpost, site.views_by_outpost(session, vantage, [outpost.id]).get(outpost.id), vantage
        ),
        "site_lane": site.site_lane(session, vantage, outpost.id, chart.start, chart.end),
        "site_only": site.site_only_stretches(session, outpost.id),
        "vantage": vantage,
        "chart": chart,
        "chart_svg": timeline_svg(chart),
        "ranges": list(queries.RANGES),
        "uptime": uptime,
        "uptime_cells": {
            cell.window: cell
            for cell in window_cells(
                uptime, list(uptime), queries.data_since(session, [outpost.id]).get(outpost.id), now
            )
        },
        "incidents": incidents,
        "drill_incidents": drill_uptime.drill_incident_ids(session, outpost.id, incidents, now),
        "drill_lane": drill_uptime.drill_lane(session, outpost.id, chart.start, chart.end),
        "drills_here": list_drills(session, outpost_pk=outpost.id, limit=10),
        "now": now,
        "last_run": last_run,
        "csv_start": (now - min(span, MAX_SAMPLE_RANGE)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "csv_end": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    history = templates.get_template("connectivity/_outpost_history.html")
    # Rendered once per data version and range: the markup is ours (autoescaped), not input.
    data["history_html"] = Markup(history.render({**data, "outpost": outpost, "request": request}))  # noqa: S704
    return data


@router.get("/outposts/{outpost_id}", name="outposts.detail", response_class=HTMLResponse)
async def detail(
    request: Request,
    session: DbSession,
    principal: Viewer,
    outpost_id: str,
    range_key: Annotated[str, Query(alias="range", description="6h, 24h, 7d, 30d or 90d")] = "24h",
) -> Response:
    # The whole page is reused for this sign-in and URL until the data changes (page_cache); a
    # reused one is answered on the event loop, a build runs in the thread pool.
    return await for_sign_in_async(
        request, session, lambda: _detail(request, session, principal, outpost_id, range_key)
    )


def _detail(
    request: Request, session: Session, principal: Principal, outpost_id: str, range_key: str
) -> Response:
    outpost = _outpost_or_error(session, outpost_id, with_clusters=True)
    if range_key not in queries.RANGES:
        raise _invalid(
            ("query", "range"),
            f"range must be one of {', '.join(queries.RANGES)} (got {range_key!r})",
            range_key,
            list(queries.RANGES),
        )
    # What every viewer sees alike is read once per data version and range (page_cache); the
    # Outpost row itself, the notice and the person's own controls are per request.
    vantage = request.app.state.settings.vantage
    shown = shared_cache(request, "outpost").get_or_render(
        (outpost.id, range_key),
        data_version(request, session),
        lambda: _detail_data(request, session, outpost, range_key, vantage),
    )
    context = {
        **shown,
        "outpost": outpost,
        "notice": request.query_params.get("notice", "")[:200],
        "can_poll": principal.role.allows(Role.responder),
    }
    return render(request, "connectivity/outpost.html", context, partial="connectivity/_chart.html")


@router.post("/outposts/{outpost_id}/poll", name="outposts.poll_now")
def poll_now(request: Request, session: DbSession, outpost_id: str, principal: Responder) -> Response:
    """Fetch this Outpost's region from CloudWatch now instead of at the next interval; audited."""
    from app.jobs.connectivity import poll_region_now

    outpost = _outpost_or_error(session, outpost_id)
    # The poll writes through its own sessions; the request's session writes only the audit event.
    result = poll_region_now(request.app.state.settings, request.app.state.session_factory, outpost.region)
    ok = result.outcome == "ok"
    record_audit(
        session,
        actor=actor_of(principal, request),
        action="connectivity.poll_now",
        target=f"outpost:{outpost.outpost_id}",
        outcome="success" if ok else "failure",
        details={"region": outpost.region, "outcome": result.outcome},
    )
    notice = (
        f"Fetched {outpost.region} from CloudWatch now."
        if ok
        else f"CloudWatch in {outpost.region} did not answer: {result.error or result.outcome}"
    )
    return redirect_after_post(request, f"/outposts/{quote(outpost.outpost_id)}?notice={quote(notice[:200])}")


@router.get("/outposts/{outpost_id}/samples.csv", name="outposts.samples_csv", dependencies=viewer)
def samples_csv(
    request: Request, session: DbSession, outpost_id: str, start: StartParam = None, end: EndParam = None
) -> StreamingResponse:
    outpost = _outpost_or_error(session, outpost_id)
    start, end = _sample_range(start, end, _now())
    factory = request.app.state.session_factory
    pk, name = outpost.id, outpost.outpost_id

    def rows() -> Iterator[str]:
        # The request's session is closed once the handler returns; the stream reads with its own.
        buffer = io.StringIO()
        writer = SafeWriter(buffer, lineterminator="\n")
        writer.writerow(["outpost_id", "timestamp", "connected_status", "period_seconds"])
        with factory() as stream_session:
            for count, sample in enumerate(queries.iter_samples(stream_session, pk, start, end), start=1):
                writer.writerow(
                    [name, sample.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), sample.value, sample.period_seconds]
                )
                if count % 1000 == 0:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    filename = f"{name}_{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ---------------------------------------------------------------- JSON API


@router.get(
    "/api/v1/outposts",
    name="api.outposts.list",
    response_model=schemas.OutpostListOut,
    dependencies=viewer,
    tags=["connectivity"],
    summary="Outposts with state, uptime per window and last error, a page at a time (by name)",
)
async def api_list(
    request: Request,
    session: DbSession,
    state: Annotated[str | None, Query(description="Only Outposts in this state.")] = None,
    region: Annotated[str | None, Query(description="Only Outposts in this region.")] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=400, description="`next_cursor` of the previous page; omit for the first."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=paging.MAX_API_LIMIT, description="At most this many Outposts per page.")
    ] = 100,
) -> Response:
    if state and state.upper() not in STATES:
        raise _invalid(
            ("query", "state"),
            f"state must be one of {', '.join(STATES)} (got {state!r})",
            state,
            list(STATES),
        )
    wanted = state.upper() if state else None

    def answer() -> bytes:
        now = _now()
        try:
            page = paging.api_page(session, state=wanted, region=region, cursor=cursor, limit=limit)
        except InvalidInput as exc:
            raise _invalid(("query", "cursor"), str(exc), cursor) from None
        uptime = queries.uptime_by_outpost(session, [o.id for o in page.outposts], now)
        last_run, _ = queries.latest_poll_runs(session)
        return (
            schemas.OutpostListOut(
                generated_at=now,
                last_poll=_poll_out(last_run),
                counts=queries.count_by_state(session),
                total=page.total,
                limit=limit,
                next_cursor=page.next_cursor,
                outposts=[_outpost_out(request, o, uptime[o.id]) for o in page.outposts],
            )
            .model_dump_json(by_alias=True)
            .encode()
        )

    # The answer holds nothing per person: one per data version and query serves every client
    # (a Grafana scraping every few seconds costs one read per poll); `generated_at` says when.
    # Reused without I/O, it is answered here on the event loop; else in the thread pool.
    cache = shared_cache(request, "api")
    key = (wanted, region, cursor, limit, str(request.base_url))
    body = reusable_now(request, cache, key, per_process=False)
    if body is None:
        body = await run_in_threadpool(
            lambda: cache.get_or_render(key, data_version(request, session), answer)
        )
    return Response(body, media_type="application/json")


@router.get(
    "/api/v1/outposts/{outpost_id}",
    name="api.outposts.detail",
    response_model=schemas.OutpostDetailOut,
    dependencies=viewer,
    tags=["connectivity"],
    summary="One Outpost with its uptime and ongoing incident",
    responses={404: {"description": "Not in the fleet"}, 422: {"description": "Malformed Outpost ID"}},
)
def api_detail(request: Request, session: DbSession, outpost_id: str) -> schemas.OutpostDetailOut:
    outpost = _outpost_or_error(session, outpost_id)
    now = _now()
    uptime = queries.uptime_by_outpost(session, [outpost.id], now)[outpost.id]
    recent = queries.list_incidents(session, outpost.id, now, limit=1)
    open_incident = _incident_out(recent[0]) if recent and recent[0].ongoing else None
    summary = _outpost_out(request, outpost, uptime)
    return schemas.OutpostDetailOut(**dict(summary), open_incident=open_incident)


@router.get(
    "/api/v1/outposts/{outpost_id}/incidents",
    name="api.outposts.incidents",
    response_model=schemas.IncidentListOut,
    dependencies=viewer,
    tags=["connectivity"],
    summary="Incidents (stretches below 1), newest first, paged with a cursor",
)
def api_incidents(
    session: DbSession,
    outpost_id: str,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 200,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page: continue with older incidents.")
    ] = None,
) -> schemas.IncidentListOut:
    outpost = _outpost_or_error(session, outpost_id)
    before = _incident_cursor(cursor) if cursor else None
    views = queries.list_incidents(session, outpost.id, _now(), limit=limit + 1, before=before)
    page, more = views[:limit], len(views) > limit
    # The cursor is the oldest start on this page: incidents of one Outpost never share a start.
    next_cursor = _cursor_of(page[-1].incident.started_at) if more and page else None
    return schemas.IncidentListOut(
        outpost_id=outpost.outpost_id,
        incidents=[_incident_out(v) for v in page],
        has_more=more,
        next_cursor=next_cursor,
    )


def _cursor_of(started_at: dt.datetime) -> str:
    # "Z", not "+00:00": a "+" pasted into a query string would read as a space.
    return started_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _incident_cursor(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(("query", "cursor"), "not a cursor from next_cursor", value) from None
    if parsed.tzinfo is None:
        raise _invalid(("query", "cursor"), "not a cursor from next_cursor (no time zone)", value)
    return parsed


@router.get(
    "/api/v1/outposts/{outpost_id}/samples",
    name="api.outposts.samples",
    response_model=schemas.SampleListOut,
    dependencies=viewer,
    tags=["connectivity"],
    summary="Raw ConnectedStatus samples in [start, end), at most 31 days",
)
def api_samples(
    session: DbSession, outpost_id: str, start: StartParam = None, end: EndParam = None
) -> schemas.SampleListOut:
    outpost = _outpost_or_error(session, outpost_id)
    start, end = _sample_range(start, end, _now())
    samples = [
        schemas.SampleOut(ts=s.ts, value=s.value, period_seconds=s.period_seconds)
        for s in queries.iter_samples(session, outpost.id, start, end)
    ]
    return schemas.SampleListOut(outpost_id=outpost.outpost_id, start=start, end=end, samples=samples)
