"""Server-rendered SVG for the Outpost timeline: no JavaScript library, nothing the CSP must allow.

Each bucket is a stacked column of its whole width in time: connected share (green) at the bottom,
known-but-not-connected share (amber or red) above it, unknown share (grey, hatched) on top. A gap
is therefore drawn as unknown and never as connected. Equal neighbouring columns are merged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.services.connectivity.queries import Bucket, Timeline
from app.web.connectivity.axis import span_label, ticks
from app.web.templating import humanize_duration

WIDTH, HEIGHT = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 28
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM


@dataclass
class _Column:
    start: dt.datetime
    end: dt.datetime
    first: int
    last: int
    up: float
    down: float
    unknown: float
    down_class: str
    known: float
    connected: float


def _shares(bucket: Bucket) -> tuple[float, float, float]:
    span = bucket.seconds or 1.0
    up = bucket.connected_seconds / span
    down = max(0.0, bucket.known_seconds - bucket.connected_seconds) / span
    return round(up, 3), round(down, 3), round(max(0.0, 1.0 - up - down), 3)


def timeline_svg(timeline: Timeline) -> Markup:
    buckets = timeline.buckets
    # The axis runs from the window's start to now: nothing is drawn or labelled after now.
    total = max(timeline.end - timeline.start, dt.timedelta(seconds=1))
    scale = PLOT_W / total.total_seconds()

    columns: list[_Column] = []
    for index, bucket in enumerate(buckets):
        up, down, unknown = _shares(bucket)
        down_class = "x" if bucket.min_value is not None and bucket.min_value <= 0 else "d"
        last = columns[-1] if columns else None
        if last and (last.up, last.down, last.unknown, last.down_class) == (up, down, unknown, down_class):
            last.end, last.last = bucket.end, index
            last.known += bucket.known_seconds
            last.connected += bucket.connected_seconds
            continue
        columns.append(
            _Column(
                bucket.start,
                bucket.end,
                index,
                index,
                up,
                down,
                unknown,
                down_class,
                bucket.known_seconds,
                bucket.connected_seconds,
            )
        )

    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" shape-rendering="crispEdges" '
        f'aria-label="Connectivity from {timeline.start:%Y-%m-%d %H:%M} '
        f'to {timeline.end:%Y-%m-%d %H:%M} UTC" '
        f'data-range="{timeline.range_key}" data-buckets="{len(buckets)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="u" width="6" height="6"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>',
    ]
    for pct in (0, 50, 100):
        y = TOP + PLOT_H * (1 - pct / 100)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')

    for col in columns:
        x = LEFT + (col.start - timeline.start).total_seconds() * scale
        w = max(0.6, (col.end - col.start).total_seconds() * scale)
        unknown_s = max(0.0, (col.end - col.start).total_seconds() - col.known)
        ratio = f"{100 * col.connected / col.known:.2f}% connected" if col.known else "no data"
        title = f"{span_label(col.start, col.end, timeline.end)}: {ratio}" + (
            f", {humanize_duration(unknown_s)} unknown" if unknown_s >= 60 else ""
        )
        parts.append(f'<g class="col"><title>{escape(title)}</title>')
        y = TOP + PLOT_H
        for share, css in ((col.up, "c"), (col.down, col.down_class), (col.unknown, "u")):
            if share <= 0:
                continue
            h = share * PLOT_H
            y -= h
            fill = ' fill="url(#hatch)"' if css == "u" else ""
            parts.append(
                f'<rect class="{css}" x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}"{fill}/>'
            )
        parts.append("</g>")

    axis_y = TOP + PLOT_H
    for tick in ticks(timeline.start, timeline.end):
        x = LEFT + (tick.at - timeline.start).total_seconds() * scale
        anchor = "start" if x < LEFT + 20 else "end" if x > WIDTH - RIGHT - 20 else "middle"
        css = "tick major" if tick.major else "tick"
        parts.append(f'<line class="{css}" x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 4}"/>')
        if tick.major:
            parts.append(f'<line class="grid day" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{axis_y}"/>')
        weight = ' font-weight="600"' if tick.major else ""
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}"{weight}>{escape(tick.label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped or numeric)
