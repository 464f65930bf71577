"""What each uptime window of the overview shows, so a window never repeats a shorter one.

With one day of history, the 7 d and 30 d windows hold the same data as 24 h: they say "since
Nov 30, 1 d of data" instead of repeating the figure with days of "unknown".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.services.connectivity.status import Uptime
from app.web.connectivity.axis import HOUR, short_window


@dataclass(frozen=True)
class WindowCell:
    window: str
    # The uptime ratio to show, None when the cell shows no figure.
    ratio: float | None
    # "since Nov 30, 1 d of data" when the window starts before the data, else None.
    note: str | None
    # Unknown seconds worth showing (only inside the recorded history).
    unknown_seconds: float
    known_seconds: float


def window_cells(
    uptime: Mapping[str, Uptime], windows: Sequence[str], data_since: dt.datetime | None, now: dt.datetime
) -> list[WindowCell]:
    """One cell per window, shortest first. A window whose start is before the data shows its
    figure only when the shorter window before it does not already cover all the data."""
    cells: list[WindowCell] = []
    previous_covers_all = False
    for window in windows:
        u = uptime[window]
        note = short_window(u.start, data_since, now)
        repeat = note is not None and previous_covers_all
        unknown = u.unknown_seconds
        if note is not None and data_since is not None:
            # Time before the history begins is not "unknown": there was nothing to know yet.
            unknown = max(0.0, unknown - (data_since - u.start).total_seconds())
        cells.append(WindowCell(window, None if repeat else u.ratio, note, unknown, u.known_seconds))
        previous_covers_all = data_since is not None and data_since >= u.start - HOUR
    return cells
