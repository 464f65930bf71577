"""Route names are resolved once: the same paths as Starlette's own lookup, no route scan the second
time, and an unknown name still refused."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.routing import NoMatchFound, Router


def test_url_paths_are_starlettes_and_resolved_once(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = [
        ("outposts.detail", {"outpost_id": "op-0123456789abcdef0"}),
        ("outposts.detail", {"outpost_id": "op-0aaaaaaaaaaaaaaaa"}),
        ("static", {"path": "htmx.min.js"}),
    ]
    for name, params in asked:
        assert app.url_path_for(name, **params) == Router.url_path_for(app.router, name, **params)

    tried: list[str] = []
    for route in app.router.routes:  # routes and included routers alike

        def counting(name: str, /, _find: object = route.url_path_for, **params: object) -> object:
            tried.append(name)
            return _find(name, **params)  # type: ignore[operator]

        monkeypatch.setattr(route, "url_path_for", counting)
    for name, params in asked:
        app.url_path_for(name, **params)
    assert tried == []  # answered from the cache: no route was tried
    app.url_path_for("outposts.detail", outpost_id="op-0bbbbbbbbbbbbbbbb")
    assert len(tried) > 1  # a new Outpost: the routes are scanned, in order, as Starlette does

    with pytest.raises(NoMatchFound):
        app.url_path_for("no.such.route")
