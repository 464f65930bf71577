"""Dated times and spans in words for tooltips and verdicts: a time always says its day, so a span
over midnight or a state since yesterday is never read as today's (issue 19)."""

from __future__ import annotations

import datetime as dt


def dated(moment: dt.datetime, *, seconds: bool = False) -> str:
    """ "Nov 30 20:30" (or "Nov 30 20:30:15" with `seconds`), in UTC."""
    moment = moment.astimezone(dt.UTC)
    return (
        f"{moment:%b} {moment.day} {moment:%H:%M:%S}"
        if seconds
        else f"{moment:%b} {moment.day} {moment:%H:%M}"
    )


def dated_span(start: dt.datetime, end: dt.datetime, *, seconds: bool = False) -> str:
    """ "Nov 30 20:30 to 21:00 UTC"; the end carries its own date when it is on another day
    ("Nov 30 23:30 to Dec 1 00:00 UTC")."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if end.date() == start.date():
        return f"{dated(start, seconds=seconds)} to {end.strftime(clock)} UTC"
    return f"{dated(start, seconds=seconds)} to {dated(end, seconds=seconds)} UTC"
