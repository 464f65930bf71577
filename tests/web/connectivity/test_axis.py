"""Tick and label rules of the connectivity time axes, for every chart range and the overview strip,
across day, month and year boundaries (app/web/connectivity/axis.py)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from app.services.connectivity.queries import RANGES
from app.services.connectivity.status import Uptime
from app.web.connectivity.axis import data_span, short_window, span_label, step_for, ticks
from app.web.connectivity.windows import window_cells

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def labels(start: dt.datetime, end: dt.datetime) -> list[str]:
    return [t.label for t in ticks(start, end)]


def test_6h_ticks_on_the_hour_not_at_the_minute_of_now() -> None:
    now = at(2026, 11, 30, 20, 33)
    got = ticks(now - RANGES["6h"][0], now)
    assert [t.at.minute for t in got] == [0] * len(got)
    assert labels(now - dt.timedelta(hours=6), now) == ["15:00", "16:00", "17:00", "18:00", "19:00", "20:00"]


def test_24h_ticks_every_three_hours_with_the_date_at_midnight() -> None:
    now = at(2026, 12, 1, 10, 7)
    assert labels(now - dt.timedelta(hours=24), now) == [
        "12:00", "15:00", "18:00", "21:00", "Dec 1", "03:00", "06:00", "09:00",
    ]  # fmt: skip
    majors = [t for t in ticks(now - dt.timedelta(hours=24), now) if t.major]
    assert [t.at for t in majors] == [at(2026, 12, 1)]


def test_7d_ticks_every_midnight_none_skipped() -> None:
    now = at(2026, 11, 30, 20, 30)
    got = ticks(now - RANGES["7d"][0], now)
    assert [t.label for t in got] == ["Nov 24", "Nov 25", "Nov 26", "Nov 27", "Nov 28", "Nov 29", "Nov 30"]
    assert all(t.major and (t.at.hour, t.at.minute) == (0, 0) for t in got)


def test_7d_across_a_month_boundary() -> None:
    now = at(2026, 12, 3, 1, 0)
    assert labels(now - dt.timedelta(days=7), now) == [
        "Nov 27", "Nov 28", "Nov 29", "Nov 30", "Dec 1", "Dec 2", "Dec 3",
    ]  # fmt: skip


@pytest.mark.parametrize("range_key", ["30d", "90d"])
def test_long_ranges_tick_on_monday_midnights(range_key: str) -> None:
    now = at(2026, 11, 30, 20, 30)
    got = ticks(now - RANGES[range_key][0], now)
    assert 3 <= len(got) <= 8
    assert all(t.at.weekday() == 0 and (t.at.hour, t.at.minute) == (0, 0) for t in got)
    steps = {b.at - a.at for a, b in itertools.pairwise(got)}
    assert len(steps) == 1 and next(iter(steps)) % dt.timedelta(days=7) == dt.timedelta(0)


@pytest.mark.parametrize("range_key", list(RANGES))
@pytest.mark.parametrize(
    "now",
    [at(2026, 11, 30, 20, 33, 17), at(2026, 12, 1, 0, 0), at(2027, 1, 1, 0, 10), at(2026, 3, 1, 23, 59)],
)
def test_every_range_ticks_inside_the_window_and_never_after_now(range_key: str, now: dt.datetime) -> None:
    length = RANGES[range_key][0]
    got = ticks(now - length, now)
    assert 3 <= len(got) <= 9
    assert all(now - length <= t.at <= now for t in got)
    assert all(t.at.second == 0 and t.at.microsecond == 0 for t in got)
    # Dates exactly at day boundaries, times elsewhere.
    for t in got:
        assert t.major == ((t.at.hour, t.at.minute) == (0, 0))
        assert (":" in t.label) != t.major


def test_month_and_year_boundaries_are_labelled_by_date() -> None:
    now = at(2027, 1, 1, 5, 0)
    got = ticks(now - dt.timedelta(hours=24), now)
    assert [t.label for t in got if t.major] == ["Jan 1"]
    # A date in the year before now says its year.
    assert labels(now - dt.timedelta(days=7), now) == [
        "Dec 26 2026", "Dec 27 2026", "Dec 28 2026", "Dec 29 2026", "Dec 30 2026", "Dec 31 2026", "Jan 1",
    ]  # fmt: skip
    # Three days over the end of February (not a leap year): 12-hour ticks, a date at each midnight.
    assert labels(at(2026, 2, 27, 12), at(2026, 3, 2, 12)) == [
        "12:00", "Feb 28", "12:00", "Mar 1", "12:00", "Mar 2", "12:00",
    ]  # fmt: skip


def test_step_ladder() -> None:
    assert step_for(dt.timedelta(hours=6)) == dt.timedelta(hours=1)
    assert step_for(dt.timedelta(hours=24)) == dt.timedelta(hours=3)
    assert step_for(dt.timedelta(days=7)) == dt.timedelta(days=1)
    assert step_for(dt.timedelta(days=30)) == dt.timedelta(days=7)
    assert step_for(dt.timedelta(days=90)) == dt.timedelta(days=14)
    assert ticks(at(2026, 1, 1), at(2026, 1, 1)) == []


def test_spans_carry_their_dates_across_midnight() -> None:
    assert span_label(at(2026, 11, 30, 20, 30), at(2026, 11, 30, 21, 0)) == "Nov 30 20:30 to 21:00 UTC"
    assert span_label(at(2026, 11, 30, 20, 30), at(2026, 12, 1, 0, 23)) == "Nov 30 20:30 to Dec 1 00:23 UTC"


def test_strip_tooltips_are_dated() -> None:
    from app.services.connectivity.queries import StripSegment

    seg = StripSegment("connected", at(2026, 11, 30, 20, 30), at(2026, 12, 1, 20, 23), 48, 86000, 86000)
    assert seg.title.startswith("Nov 30 20:30 to Dec 1 20:23 UTC: connected")


def test_short_window_note() -> None:
    now = at(2026, 12, 1, 12, 0)
    since = at(2026, 11, 30, 12, 0)
    assert short_window(now - dt.timedelta(days=7), since, now) == "since Nov 30, 1 d of data"
    assert short_window(now - dt.timedelta(hours=24), since, now) is None
    assert short_window(now - dt.timedelta(days=7), None, now) is None
    assert data_span(5 * 3600 + 59) == "5 h" and data_span(59) == "1 min"


def _uptime(window: str, days: float, now: dt.datetime, known: float) -> Uptime:
    span = days * 86400
    return Uptime(window, now - dt.timedelta(days=days), now, known * 0.99, known, span - known)


def test_one_day_of_data_does_not_repeat_the_24h_figure() -> None:
    now = at(2026, 12, 1, 12, 0)
    since = at(2026, 11, 30, 12, 0)
    uptime = {w: _uptime(w, d, now, 86400) for w, d in (("24h", 1), ("7d", 7), ("30d", 30))}
    cells = window_cells(uptime, ("24h", "7d", "30d"), since, now)
    assert cells[0].ratio == pytest.approx(0.99) and cells[0].note is None
    # 24 h already holds all the data: 7 d says so instead of repeating the figure.
    assert cells[1].ratio is None and cells[1].note == "since Nov 30, 1 d of data"
    assert cells[1].unknown_seconds == 0
    # 30 d would repeat 7 d: no figure, only the note.
    assert cells[2].ratio is None and cells[2].note == "since Nov 30, 1 d of data"


def test_full_history_shows_every_figure() -> None:
    now = at(2026, 12, 1, 12, 0)
    uptime = {w: _uptime(w, d, now, d * 86400) for w, d in (("24h", 1), ("7d", 7), ("30d", 30))}
    cells = window_cells(uptime, ("24h", "7d", "30d"), at(2025, 1, 1), now)
    assert [c.note for c in cells] == [None, None, None]
    assert all(c.ratio is not None for c in cells)


def test_three_days_of_data_show_the_7d_figure_once() -> None:
    now = at(2026, 12, 1, 12, 0)
    since = at(2026, 11, 28, 12, 0)
    uptime = {w: _uptime(w, d, now, min(d, 3) * 86400) for w, d in (("24h", 1), ("7d", 7), ("30d", 30))}
    cells = window_cells(uptime, ("24h", "7d", "30d"), since, now)
    assert cells[0].note is None and cells[0].ratio is not None
    assert cells[1].note == "since Nov 28, 3 d of data" and cells[1].ratio is not None
    assert cells[2].ratio is None and cells[2].note == "since Nov 28, 3 d of data"
