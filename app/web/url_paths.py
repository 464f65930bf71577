"""Route names resolved once per name and parameters.

Starlette's `Router.url_path_for` tries every route in turn on each call, and a page makes dozens of
calls (navigation, links, forms), the API one per Outpost it lists: about 9% of a cached page's time
in a profile. The answer depends only on the routes (fixed once the app is built) and the call's
arguments, and a `URLPath` is an immutable string, so the answers are kept in a bounded LRU cache.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URLPath

CACHED_PATHS = 4096


def cache_url_paths(app: Starlette, maxsize: int = CACHED_PATHS) -> None:
    """Put an LRU cache in front of `app.router.url_path_for` (call once every route is added).
    An unknown name still raises `NoMatchFound` (exceptions are not cached)."""
    router = app.router
    find = router.url_path_for

    @lru_cache(maxsize=maxsize)
    def cached(name: str, params: tuple[tuple[str, Any], ...]) -> URLPath:
        return find(name, **dict(params))

    def url_path_for(name: str, /, **path_params: Any) -> URLPath:
        key = tuple(sorted(path_params.items()))
        try:
            hash(key)
        except TypeError:  # an unhashable parameter: ask the routes
            return find(name, **path_params)
        return cached(name, key)

    router.url_path_for = url_path_for  # type: ignore[method-assign]
