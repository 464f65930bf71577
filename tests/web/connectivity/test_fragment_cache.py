"""The overview's fragment cache: reuse while the data is unchanged, stale-while-revalidate."""

from __future__ import annotations

import threading
import time

from app.web.connectivity.overview import FragmentCache


def test_reuses_until_the_fingerprint_changes() -> None:
    cache = FragmentCache(ttl=60)
    calls: list[str] = []

    def render(body: str) -> str:
        calls.append(body)
        return body

    assert cache.get_or_render(("q",), 1, lambda: render("a")) == "a"
    assert cache.get_or_render(("q",), 1, lambda: render("b")) == "a"
    assert cache.get_or_render(("other",), 1, lambda: render("c")) == "c"
    # A new poll: the next request renders the new data itself.
    assert cache.get_or_render(("q",), 2, lambda: render("d")) == "d"
    assert calls == ["a", "c", "d"]


def test_ttl_zero_always_renders() -> None:
    cache = FragmentCache(ttl=0)
    bodies = iter(["a", "b"])
    assert cache.get_or_render(("q",), 1, lambda: next(bodies)) == "a"
    assert cache.get_or_render(("q",), 1, lambda: next(bodies)) == "b"


def test_concurrent_requests_get_the_stale_copy_while_one_renders() -> None:
    cache = FragmentCache(ttl=0.05)
    cache.get_or_render(("q",), 1, lambda: "old")
    time.sleep(0.06)
    started, release = threading.Event(), threading.Event()

    def slow_render() -> str:
        started.set()
        release.wait(5)
        return "new"

    results: list[str] = []
    refresher = threading.Thread(target=lambda: results.append(cache.get_or_render(("q",), 2, slow_render)))
    refresher.start()
    assert started.wait(5)
    # While the refresh runs, another request does not queue: it gets the previous rendering.
    assert cache.get_or_render(("q",), 2, lambda: "never called") == "old"
    release.set()
    refresher.join(5)
    assert results == ["new"]
    assert cache.get_or_render(("q",), 2, lambda: "never called") == "new"


def test_fingerprint_is_memoized_briefly() -> None:
    cache = FragmentCache(ttl=15, fingerprint_memo=0.05)
    reads = iter([1, 2])
    assert cache.fingerprint(lambda: next(reads)) == 1
    assert cache.fingerprint(lambda: next(reads)) == 1  # within the memo: no database read
    time.sleep(0.06)
    assert cache.fingerprint(lambda: next(reads)) == 2
