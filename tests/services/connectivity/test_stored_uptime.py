"""Uptime stored at write time (uptime_windows): what a poll writes equals what the rollups say,
readers take it without reading samples or rollups, and never take a row that is stale, from the
future, or older than the samples written since (both databases)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from app.models import Outpost, UptimeWindow
from app.services.connectivity import queries, retention, status
from tests.factories import NOW, add_rollups, add_samples, make_outposts, start_drill_now

MINUTE = dt.timedelta(minutes=1)
VALID = dt.timedelta(minutes=3)


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]).lower())

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)


def _history(session: Session, count: int) -> list[Outpost]:
    """Outposts with 100 days of hourly rollups (some hours down, some unknown) and two hours of
    raw samples ending at NOW, different for each."""
    outposts = make_outposts(session, count)
    for n, outpost in enumerate(outposts):
        hours = [
            None if (h + n) % 17 == 0 else ((1800.0, 3600.0) if (h * (n + 3)) % 11 == 0 else (3600.0, 3600.0))
            for h in range(100 * 24)
        ]
        add_rollups(session, outpost, NOW - dt.timedelta(days=100), hours)
        add_samples(session, outpost, NOW - dt.timedelta(hours=2), [1.0, 0.0, 0.5, None][n % 4 :] * 30)
    return outposts


def _figures(
    found: dict[int, dict[str, status.Uptime]],
) -> dict[tuple[int, str], tuple[float, float, dt.datetime]]:
    return {
        (pk, name): (round(u.connected_seconds, 6), round(u.known_seconds, 6), u.end)
        for pk, by_window in found.items()
        for name, u in by_window.items()
    }


def test_stored_uptime_is_what_the_rollups_say_and_readers_take_it(session: Session) -> None:
    outposts = _history(session, 6)
    pks = [o.id for o in outposts]
    computed = status.uptime_bulk(session, pks, tuple(status.WINDOWS), NOW)

    assert status.store_uptime(session, pks, NOW, valid_for=VALID) == 6 * len(status.WINDOWS)
    with statements(session) as seen:
        stored = status.current_uptime(session, pks, tuple(status.WINDOWS), NOW + MINUTE)

    assert _figures(stored) == _figures(computed)
    assert {u.ratio for by_window in stored.values() for u in by_window.values()} != {1.0}
    # One indexed read of the stored rows: no sample, no rollup is summed for a page.
    assert len(seen) == 1 and "uptime_windows" in seen[0]
    assert not any(
        table in s for s in seen for table in ("connected_samples", "hourly_rollups", "daily_rollups")
    )


def test_a_stale_or_future_row_is_computed_again(session: Session) -> None:
    outposts = _history(session, 2)
    pks = [o.id for o in outposts]
    status.store_uptime(session, pks, NOW, valid_for=VALID)
    # Make the stored figures wrong on purpose: only a reader that took them would show zero.
    session.execute(update(UptimeWindow).values(connected_seconds=0.0, known_seconds=0.0, ratio=None))

    taken = status.current_uptime(session, pks, ["24h"], NOW + MINUTE)
    assert {u.known_seconds for by_window in taken.values() for u in by_window.values()} == {0.0}

    for later in (NOW + VALID, NOW - MINUTE):  # past `valid_until`; before `as_of`
        found = status.current_uptime(session, pks, ["24h", "90d"], later)
        assert _figures(found) == _figures(status.uptime_bulk(session, pks, ["24h", "90d"], later))
        assert all(
            u.known_seconds > 0 and u.end == later for by_window in found.values() for u in by_window.values()
        )


def test_samples_written_after_the_poll_drop_that_outposts_stored_uptime(session: Session) -> None:
    changed, untouched = _history(session, 2)
    status.store_uptime(session, [changed.id, untouched.id], NOW, valid_for=VALID)

    add_samples(session, changed, NOW - dt.timedelta(hours=30), [0.0] * 60)  # a late hour of outage

    kept = session.execute(
        select(UptimeWindow.outpost_pk, func.count()).group_by(UptimeWindow.outpost_pk)
    ).all()
    assert kept == [(untouched.id, len(status.WINDOWS))]
    found = status.current_uptime(session, [changed.id], ["7d"], NOW)[changed.id]["7d"]
    assert found == status.uptime_bulk(session, [changed.id], ["7d"], NOW)[changed.id]["7d"]


def test_retention_that_changes_history_drops_every_stored_row(session: Session) -> None:
    outposts = _history(session, 2)
    status.store_uptime(session, [o.id for o in outposts], NOW, valid_for=VALID)

    def stored() -> int:
        return int(session.scalar(select(func.count()).select_from(UptimeWindow)) or 0)

    retention.apply_retention(session, NOW, raw_days=1, rollup_days=730, poll_run_days=30)
    assert stored() == 2 * len(status.WINDOWS)  # nothing was old enough: the rows stay
    retention.apply_retention(
        session, NOW + dt.timedelta(days=1), raw_days=1, rollup_days=730, poll_run_days=30
    )
    assert stored() == 0


def test_the_uptime_sort_reads_the_stored_rows_and_leaves_drill_time_out(session: Session) -> None:
    outposts = _history(session, 8)
    pks = [o.id for o in outposts]
    status.store_uptime(session, pks, NOW, valid_for=VALID)
    drilled = outposts[1]
    drill = start_drill_now(session, drilled)
    drill.started_at = NOW - dt.timedelta(hours=2)  # over its raw samples, inside the 24 hours
    session.flush()
    raw = status.uptime_bulk(session, [drilled.id], ["24h"], NOW)[drilled.id]["24h"]
    shown = queries.uptime_by_outpost(session, [drilled.id], NOW, ["24h"])[drilled.id]["24h"]
    assert shown.drill_seconds > 0 and shown.ratio != raw.ratio

    def order(sort: str, page: int) -> list[str]:
        found = queries.overview(session, NOW, sort=sort, page=page, page_size=3, group="none")
        return [row.outpost.name for row in found.rows]

    def reference(descending: bool) -> list[str]:
        every = queries.uptime_by_outpost(session, pks, NOW, ["24h"])
        ordered = sorted(
            outposts,
            key=lambda o: (
                every[o.id]["24h"].ratio if every[o.id]["24h"].ratio is not None else -1.0,
                o.name.lower(),
            ),
            reverse=descending,
        )
        return [o.name for o in ordered]

    with statements(session) as seen:
        ascending = order("uptime", 1) + order("uptime", 2) + order("uptime", 3)
    assert ascending == reference(False)
    assert order("-uptime", 1) + order("-uptime", 2) + order("-uptime", 3) == reference(True)
    assert not any("daily_rollups" in s or ("hourly_rollups" in s and "sum(" in s) for s in seen)

    # Without a valid stored row for every matching Outpost, the sort computes them all (the same order).
    session.execute(delete(UptimeWindow).where(UptimeWindow.outpost_pk == outposts[0].id))
    assert order("uptime", 1) + order("uptime", 2) + order("uptime", 3) == reference(False)
