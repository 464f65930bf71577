"""Server-side paging and grouping of the fleet for the overview and `GET /api/v1/outposts`.

A page reads the Outposts it shows (ORDER BY ... LIMIT in SQL, keyed on a cursor for the API) and
the per-group counts in one GROUP BY, so its cost follows the page size, not the fleet size.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.models import Outpost, UptimeWindow
from app.services.connectivity.status import STATES, fresh_uptime_clause
from app.services.errors import InvalidInput

# Worst first, as in queries.SEVERITY, but as SQL so the database sorts and limits.
_SEVERITY_SQL = case(
    (Outpost.state == "DISCONNECTED", 0),
    (Outpost.state == "DEGRADED", 1),
    (Outpost.state == "UNKNOWN", 2),
    (Outpost.state == "CONNECTED", 3),
    else_=9,
)
GROUPS = ("region", "none")
MAX_API_LIMIT = 1000


@dataclass(frozen=True)
class Group:
    """One region of the fleet with its Outposts per state (worst first on the overview)."""

    key: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def severity(self) -> tuple[int, ...]:
        return (
            -self.counts.get("DISCONNECTED", 0),
            -self.counts.get("DEGRADED", 0),
            -self.counts.get("UNKNOWN", 0),
        )


@dataclass(frozen=True)
class Page:
    outposts: list[Outpost]
    total: int  # matching the filters, over every page
    offset: int
    limit: int
    next_cursor: str | None = None


def _filtered(stmt: Select[Any], state: str | None, region: str | None) -> Select[Any]:
    if state:
        stmt = stmt.where(Outpost.state == state)
    if region:
        stmt = stmt.where(Outpost.region == region)
    return stmt


def count_matching(
    session: Session, *, state: str | None = None, region: str | None = None, with_errors: bool = False
) -> int:
    stmt = select(func.count(Outpost.id))
    if with_errors:
        stmt = stmt.where(Outpost.last_error.is_not(None))
    if state:
        stmt = stmt.where(Outpost.state == state)
    if region:
        stmt = stmt.where(Outpost.region == region)
    return int(session.scalar(stmt) or 0)


def groups_by_region(session: Session, *, state: str | None = None) -> list[Group]:
    """Every region with its Outposts per state, most disconnected (then degraded, unknown) first."""
    stmt = select(Outpost.region, Outpost.state, func.count()).group_by(Outpost.region, Outpost.state)
    if state:
        stmt = stmt.where(Outpost.state == state)
    counts: dict[str, dict[str, int]] = {}
    for region, row_state, count in session.execute(stmt):
        counts.setdefault(region, dict.fromkeys(STATES, 0))[row_state] = int(count)
    groups = [Group(region, per) for region, per in counts.items()]
    return sorted(groups, key=lambda g: (g.severity, g.key))


_ORDER = {
    "state": lambda: [_SEVERITY_SQL, func.lower(Outpost.name), Outpost.outpost_id],
    "name": lambda: [func.lower(Outpost.name), Outpost.outpost_id],
    "region": lambda: [Outpost.region, func.lower(Outpost.name), Outpost.outpost_id],
    # Oldest (or never) first: those are the ones to look at. NULLs sort first on both databases.
    "since": lambda: [Outpost.state_since.is_not(None), Outpost.state_since, func.lower(Outpost.name)],
    "age": lambda: [Outpost.last_sample_at.is_not(None), Outpost.last_sample_at, func.lower(Outpost.name)],
}


def page_outposts(
    session: Session,
    *,
    state: str | None = None,
    region: str | None = None,
    sort: str = "state",
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """One page of the filtered fleet, sorted in SQL by a key of _ORDER ('-' reverses).

    "uptime" is `page_by_uptime`'s (it joins the stored uptime rows).
    """
    key = sort.lstrip("-")
    columns = _ORDER[key]()
    if sort.startswith("-"):
        columns = [column.desc() for column in columns]
    stmt = (
        _filtered(select(Outpost), state, region).order_by(*columns, Outpost.id).offset(offset).limit(limit)
    )
    outposts = list(session.scalars(stmt))
    return Page(outposts, count_matching(session, state=state, region=region), offset, limit)


def page_by_uptime(
    session: Session,
    *,
    now: dt.datetime,
    state: str | None = None,
    region: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = 50,
    ratios: Mapping[int, float | None] | None = None,
) -> Page | None:
    """One page sorted by 24-hour uptime (lowest first; no known time sorts below 0), in SQL on the
    rows the last poll stored. `ratios` overrides the stored ratio of a few Outposts (those whose
    drill time is left out). None when a matching Outpost has no stored row valid at `now`: the
    caller then computes every matching Outpost's uptime and sorts it itself."""
    fresh = and_(
        UptimeWindow.outpost_pk == Outpost.id, UptimeWindow.window_key == "24h", fresh_uptime_clause(now)
    )
    unstored = select(func.count(Outpost.id)).outerjoin(UptimeWindow, fresh)
    unstored = _filtered(unstored.where(UptimeWindow.outpost_pk.is_(None)), state, region)
    if session.scalar(unstored):
        return None
    ratio: Any = func.coalesce(UptimeWindow.ratio, -1.0)
    known = {pk: -1.0 if value is None else value for pk, value in (ratios or {}).items()}
    if known:
        ratio = case(known, value=Outpost.id, else_=ratio)
    columns = [ratio, func.lower(Outpost.name), Outpost.id]
    if descending:
        columns = [column.desc() for column in columns]
    stmt = _filtered(select(Outpost).join(UptimeWindow, fresh), state, region)
    outposts = list(session.scalars(stmt.order_by(*columns).offset(offset).limit(limit)))
    return Page(outposts, count_matching(session, state=state, region=region), offset, limit)


# ---------------------------------------------------------------- API cursor (keyset on name, id)


def encode_cursor(outpost: Outpost) -> str:
    raw = json.dumps([outpost.name, outpost.outpost_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(name, outpost_id) of the last Outpost of the previous page; InvalidInput when it is not one
    of ours (a cursor is opaque: pass back `next_cursor` as it came)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, outpost_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(name, str) or not isinstance(outpost_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput(
            f"cursor {cursor[:40]!r} is not a cursor from this API; pass `next_cursor` from the "
            "previous page unchanged, or leave it out for the first page",
            field="cursor",
        ) from None
    return name, outpost_id


def api_page(
    session: Session,
    *,
    state: str | None = None,
    region: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """Outposts by name (then ID) after `cursor`, at most `limit`, with the total matching."""
    stmt = _filtered(select(Outpost), state, region)
    if cursor:
        name, outpost_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Outpost.name > name, and_(Outpost.name == name, Outpost.outpost_id > outpost_id))
        )
    rows = list(session.scalars(stmt.order_by(Outpost.name, Outpost.outpost_id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]) if more and rows else None
    return Page(rows, count_matching(session, state=state, region=region), 0, limit, next_cursor)


def sort_by_uptime(
    outposts: Sequence[Outpost], uptime: dict[int, dict[str, object]], reverse: bool
) -> list[Outpost]:
    def key(o: Outpost) -> tuple[float, str]:
        found = uptime.get(o.id, {}).get("24h")
        ratio = getattr(found, "ratio", None)
        return (ratio if ratio is not None else -1.0, o.name.lower())

    return sorted(outposts, key=key, reverse=reverse)


__all__ = [
    "GROUPS",
    "MAX_API_LIMIT",
    "Group",
    "Page",
    "api_page",
    "count_matching",
    "decode_cursor",
    "encode_cursor",
    "groups_by_region",
    "page_by_uptime",
    "page_outposts",
    "sort_by_uptime",
]
