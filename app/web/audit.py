"""The audit trail: /audit (filters, paging, CSV export) and `GET /api/v1/audit`, admins only."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from app.schemas import AuditEventOut, AuditPageOut
from app.services.audit import AuditFilter, iter_audit_events, list_audit_actions, list_audit_events
from app.services.csv_cells import SafeWriter
from app.web.deps import DbSession
from app.web.security import Admin
from app.web.templating import render

router = APIRouter()

PER_PAGE = 50
CSV_COLUMNS = ("time", "actor", "action", "target", "outcome", "client_address", "user_agent", "details")


def _parse_time(name: str, value: str | None) -> dt.datetime | None:
    """ISO date or date-time; without an offset it is taken as UTC (what the page shows)."""
    if value is None or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422, f"{name}: {value!r} is not a date or date-time (use 2026-11-30 or 2026-11-30T14:05)"
        ) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


class AuditQuery:
    """The filters as query parameters, shared by the page, the CSV export and the API."""

    def __init__(
        self,
        actor: Annotated[
            str | None, Query(max_length=128, description="Exact actor (user name, cli:NAME)")
        ] = None,
        action: Annotated[
            str | None,
            Query(max_length=64, description="Action or action family: `credential` matches credential.*"),
        ] = None,
        target: Annotated[str | None, Query(max_length=255, description="Substring of the target")] = None,
        outcome: Annotated[str | None, Query(max_length=16, description="success, failure or denied")] = None,
        since: Annotated[
            str | None, Query(max_length=40, description="From (ISO date-time, UTC if no offset)")
        ] = None,
        until: Annotated[
            str | None, Query(max_length=40, description="Until, exclusive (ISO date-time)")
        ] = None,
    ) -> None:
        self.raw = {
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": outcome,
            "since": since,
            "until": until,
        }
        self.filter = AuditFilter(
            actor=(actor or "").strip() or None,
            action=(action or "").strip() or None,
            target=(target or "").strip() or None,
            outcome=(outcome or "").strip() or None,
            since=_parse_time("since", since),
            until=_parse_time("until", until),
        )

    def query_string(self, **extra: Any) -> str:
        params = {k: v for k, v in {**self.raw, **extra}.items() if v not in (None, "")}
        return urlencode(params)


Filters = Annotated[AuditQuery, Depends()]


@router.get("/audit", name="audit.index")
def audit_index(
    request: Request,
    db: DbSession,
    _principal: Admin,
    filters: Filters,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    result = list_audit_events(db, filters.filter, page=page, per_page=PER_PAGE)
    context = {
        "result": result,
        "filters": filters.raw,
        "actions": list_audit_actions(db),
        "query": filters.query_string(),
        "prev_query": filters.query_string(page=page - 1) if page > 1 else None,
        "next_query": filters.query_string(page=page + 1) if page < result.pages else None,
    }
    return render(request, "audit/index.html", context, partial="audit/_table.html")


def _csv_rows(db: DbSession, audit_filter: AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in iter_audit_events(db, audit_filter):
        writer.writerow(
            [
                event.occurred_at.isoformat(),
                event.actor,
                event.action,
                event.target,
                event.outcome,
                event.client_address or "",
                event.user_agent or "",
                json.dumps(event.details, sort_keys=True),
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/audit/export.csv", name="audit.export")
def audit_export(db: DbSession, _principal: Admin, filters: Filters) -> Response:
    # Rendered inside the request's transaction (the session closes after the response starts).
    body = "".join(_csv_rows(db, filters.filter))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%MZ")
    return StreamingResponse(
        iter([body]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="lifeline-audit-{stamp}.csv"'},
    )


@router.get("/api/v1/audit", name="audit.api_list", response_model=AuditPageOut, tags=["audit"])
def api_audit(
    db: DbSession,
    _principal: Admin,
    filters: Filters,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPageOut:
    """Audit events, newest first, with the same filters as the page (admins only)."""
    result = list_audit_events(db, filters.filter, page=page, per_page=per_page)
    items = [
        AuditEventOut(
            id=e.id,
            occurred_at=e.occurred_at,
            actor=e.actor,
            action=e.action,
            target=e.target,
            outcome=e.outcome,
            client_address=e.client_address,
            user_agent=e.user_agent,
            details=e.details,
        )
        for e in result.events
    ]
    return AuditPageOut(
        items=items, total=result.total, page=result.page, per_page=result.per_page, pages=result.pages
    )
