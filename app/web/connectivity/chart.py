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


def _label(moment: dt.datetime, length: dt.timedelta) -> str:
    return moment.strftime("%H:%M") if length <= dt.timedelta(days=1) else moment.strftime("%b %d")


def timeline_svg(timeline: Timeline) -> Markup:
    buckets = timeline.buckets
    total = dt.timedelta(seconds=timeline.bucket_seconds * max(1, len(buckets)))
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
        title = f"{col.start:%Y-%m-%d %H:%M} to {col.end:%H:%M} UTC: {ratio}" + (
            f", {int(unknown_s // 60)} min unknown" if unknown_s >= 60 else ""
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

    ticks = 6
    length = timeline.end - timeline.start
    for i in range(ticks + 1):
        moment = timeline.start + total * i / ticks
        x = LEFT + PLOT_W * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        parts.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H + 4}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{_label(moment, length)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped or numeric)
