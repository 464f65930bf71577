"""Time-axis rules for the connectivity charts: ticks at round UTC times, dates at day boundaries.

A step is picked from a fixed ladder (hours, days at midnight, weeks from Monday) so that a
window shows at most `max_ticks` ticks (9 by default); ticks lie inside [start, end], never
after `end` (now).
A tick at midnight is labelled with its date ("Nov 30"), other ticks with the time ("14:00"); a
date in another year than the window's end carries the year, so a label is never ambiguous.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)

# Candidate steps, smallest first. Sub-day steps divide 24 h, so midnight is always a tick.
STEPS: tuple[dt.timedelta, ...] = (
    dt.timedelta(minutes=15),
    dt.timedelta(minutes=30),
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    WEEK,
    2 * WEEK,
    4 * WEEK,
)

# Mondays are where weeks start (ISO 8601); 2024-01-01 was one.
_MONDAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Tick:
    at: dt.datetime
    label: str
    # True for a tick at a day boundary (its label is a date).
    major: bool


def step_for(length: dt.timedelta, max_ticks: int = 9) -> dt.timedelta:
    """The smallest ladder step that puts at most `max_ticks` ticks in a window of `length` (both
    ends included)."""
    for step in STEPS:
        if length // step + 1 <= max_ticks:
            return step
    return STEPS[-1]


def _first_tick(start: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The first round moment at or after `start`: multiples of `step` from midnight (sub-day and
    day steps) or from a Monday (week steps)."""
    if step >= WEEK:
        anchor = _MONDAY
    else:
        anchor = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if step > DAY:
            # Multi-day steps count from the same fixed day so the ticks do not move with `start`.
            anchor = _MONDAY
    offset = (start - anchor) / step
    whole = int(offset)
    if whole < offset:
        whole += 1
    return anchor + step * whole


def date_label(moment: dt.datetime, reference: dt.datetime) -> str:
    """ "Nov 30", or "Nov 30 2025" when the year differs from `reference`'s."""
    text = f"{moment:%b} {moment.day}"
    return text if moment.year == reference.year else f"{text} {moment.year}"


def tick_label(moment: dt.datetime, reference: dt.datetime) -> str:
    if (moment.hour, moment.minute) == (0, 0):
        return date_label(moment, reference)
    return f"{moment:%H:%M}"


def ticks(start: dt.datetime, end: dt.datetime, max_ticks: int = 9) -> list[Tick]:
    """Round-time ticks in [start, end], in UTC; never after `end`."""
    if end <= start:
        return []
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    step = step_for(end - start, max_ticks)
    result = []
    moment = _first_tick(start, step)
    while moment <= end:
        result.append(Tick(moment, tick_label(moment, end), (moment.hour, moment.minute) == (0, 0)))
        moment += step
    return result


def span_label(start: dt.datetime, end: dt.datetime, reference: dt.datetime | None = None) -> str:
    """A dated span for tooltips: "Nov 30 20:30 to 21:00 UTC", with the end's date when it is on
    another day ("Nov 30 23:30 to Dec 1 00:00 UTC")."""
    reference = reference or end
    first = f"{date_label(start, reference)} {start:%H:%M}"
    if end.date() == start.date():
        return f"{first} to {end:%H:%M} UTC"
    return f"{first} to {date_label(end, reference)} {end:%H:%M} UTC"


def data_span(seconds: float) -> str:
    """How much data a window holds, in the largest whole unit: "1 d", "5 h", "20 min"."""
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h"
    return f"{max(1, int(seconds // 60))} min"


def short_window(window_start: dt.datetime, data_since: dt.datetime | None, now: dt.datetime) -> str | None:
    """ "since Nov 30, 1 d of data" when the data starts more than an hour after the window does
    (the window would otherwise repeat a shorter one with its missing days as "unknown"), else None."""
    if data_since is None or data_since - window_start <= HOUR:
        return None
    return f"since {date_label(data_since, now)}, {data_span((now - data_since).total_seconds())} of data"
