"""Jinja2 environment and the "one URL, two renderings" helper used by every page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from app import __version__
from app.services.connectivity.status import STATE_LABELS
from app.services.credentials.vocabulary import failure_phrase, step_label

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# Templates are part of the release, not edited while it runs: no stat() of each template and each
# include on every render to see whether it changed (issue 20's per-request floor).
templates.env.auto_reload = False


def is_htmx_partial(request: Request) -> bool:
    """True for an HTMX request that wants a fragment (not a boosted full navigation)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def redirect_after_post(request: Request, url: str) -> Response:
    """After a successful POST: `HX-Redirect` for HTMX (a bare redirect over XHR would swap a whole
    page into the target), `303 See Other` otherwise."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render the full page, or only `partial` when HTMX asks for a fragment."""
    name = partial if partial and is_htmx_partial(request) else template
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code, headers=headers)


def _csrf_input(request: Request) -> Markup:
    token = getattr(request.state, "csrf_token", "")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)


def _csrf_token(request: Request) -> str:
    return str(getattr(request.state, "csrf_token", ""))


def humanize_age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'3 min ago', '2 h ago', 'never'."""
    if value is None:
        return "never"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - value).total_seconds())
    return humanize_duration(seconds) + " ago" if seconds >= 0 else "in " + humanize_duration(-seconds)


def humanize_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h" if rest >= 3600 else f"{days} d"


def format_time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def format_when(value: dt.datetime | None, now: dt.datetime | None = None, *, inline: bool = False) -> Markup:
    """A relative time with its absolute one as visible text, not in a tooltip only (keyboard and
    touch users see it too): `<time datetime="…">3 min ago <span class="when-abs">2026-11-30
    20:31 UTC</span></time>`, the absolute time on its own line (in a table cell) or, `inline`, in
    parentheses within a sentence."""
    if value is None:
        return Markup('<span class="muted">never</span>')
    absolute = f"({format_time(value)})" if inline else format_time(value)
    return Markup('<time datetime="{}">{} <span class="when-abs{}">{}</span></time>').format(
        value.astimezone(dt.UTC).isoformat(), humanize_age(value, now), " inline" if inline else "", absolute
    )


def install_globals(**functions: Callable[..., Any]) -> None:
    """Add page-wide template functions (the layout's banners); create_app calls this, so no module
    registers a global as a side effect of being imported."""
    templates.env.globals.update(functions)


# The cut-off banner (every page) lists this many Outposts, worst first, and counts the rest: at
# 5,000 Outposts a bad hour is hundreds of them, which belong on the overview, not atop every page.
CUT_OFF_BANNER_LIMIT = 5

templates.env.globals.update(
    app_version=__version__,
    cut_off_banner_limit=CUT_OFF_BANNER_LIMIT,
    failure_phrase=failure_phrase,
    step_label=step_label,
    csrf_input=_csrf_input,
    csrf_token=_csrf_token,
)
templates.env.filters.update(
    age=humanize_age,
    duration=humanize_duration,
    utc=format_time,
    when=format_when,
    state_label=lambda state: STATE_LABELS.get(state, state),
    plural=lambda count, word, words=None: f"{count} {word if count == 1 else (words or word + 's')}",
)
