"""What pages reuse between requests (issue 20): the fragment cache (reuse while the data is unchanged,
stale-while-revalidate) and the data version it is keyed on."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.models.base import utcnow
from app.services.audit import Actor
from app.services.drills import lifecycle
from app.services.drills import uptime as drill_uptime
from app.web.page_cache import DataVersion, FragmentCache
from tests.factories import make_outpost
from tests.support.counting import count_calls


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


def test_an_answer_keep_refuses_is_returned_but_not_stored() -> None:
    cache = FragmentCache(ttl=60)

    def only_ok(body: str) -> bool:
        return body == "ok"

    assert cache.get_or_render(("q",), 1, lambda: "error page", keep=only_ok) == "error page"
    assert cache.get_or_render(("q",), 1, lambda: "ok", keep=only_ok) == "ok"
    assert cache.get_or_render(("q",), 1, lambda: "never called") == "ok"


def test_without_stale_answers_a_changed_entry_is_waited_for() -> None:
    """`for_sign_in`'s cache (max_stale 0): a person's second tab waits for the new page rather than
    get the one from before their own change."""
    cache = FragmentCache(ttl=60, max_stale=0)
    cache.get_or_render(("q",), 1, lambda: "old")
    started, release = threading.Event(), threading.Event()

    def slow_render() -> str:
        started.set()
        release.wait(5)
        return "new"

    results: list[str] = []
    refresher = threading.Thread(target=lambda: results.append(cache.get_or_render(("q",), 2, slow_render)))
    refresher.start()
    assert started.wait(5)
    waiter = threading.Thread(target=lambda: results.append(cache.get_or_render(("q",), 2, lambda: "again")))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # waiting for the render, not answered with "old"
    release.set()
    refresher.join(5)
    waiter.join(5)
    assert results == ["new", "new"]


def test_the_version_is_memoized_between_commits(session_factory: sessionmaker[Session]) -> None:
    version = DataVersion(memo=60)
    version.watch(session_factory)
    version.watch(session_factory)  # once per factory: one listener
    with session_factory() as reader:
        empty = version.read(reader, "site")
    with session_factory() as writer:
        make_outpost(writer, name="Plant 7 Reno")
        writer.flush()
        # Not committed: the memo answers (60 s), no read.
        assert version.read(writer, "site") == empty
        writer.commit()
        # A commit through the watched factory forgets it: the next read sees the new Outpost.
        seen = version.read(writer, "site")
    assert seen != empty
    with session_factory() as reader:
        assert version.read(reader, "site") == seen
        assert version.read(reader, "site", fresh=True) == seen


def test_a_commit_during_the_read_is_not_hidden_by_the_memo(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    version = DataVersion(memo=60)
    real = drill_uptime.marker

    def commit_meanwhile(session: Session) -> tuple[object, ...]:
        version.invalidate()  # another thread's commit lands while this read runs
        return real(session)

    monkeypatch.setattr(drill_uptime, "marker", commit_meanwhile)
    with session_factory() as reader:
        version.read(reader, "site")
    monkeypatch.setattr(drill_uptime, "marker", real)
    calls = count_calls(monkeypatch, drill_uptime, "marker")
    with session_factory() as reader:
        version.read(reader, "site")
    assert calls == [1], "the value read before the commit must not be kept"


def test_a_drill_changes_the_version(session_factory: sessionmaker[Session]) -> None:
    version = DataVersion(memo=0)
    with session_factory() as db:
        outpost = make_outpost(db, name="Plant 7 Reno")
        db.flush()
        before = version.read(db, "site")
        drill = lifecycle.plan_drill(
            db,
            outpost_id=outpost.outpost_id,
            title="service link drill",
            planned_start=None,
            duration_minutes=30,
            actor=Actor(name="ada", role="admin"),
            now=utcnow(),
        )
        db.flush()
        planned = version.read(db, "site")
        assert planned != before
        lifecycle.start_drill(db, drill, Actor(name="ada", role="admin"), utcnow())
        db.flush()
        assert version.read(db, "site") != planned
        assert version.read(db, "site") != before


def test_remembered_reads_follow_the_version() -> None:
    version = DataVersion(memo=60)
    reads = iter([1, 2, 3])
    assert version.remember("probe", lambda: next(reads)) == 1
    assert version.remember("probe", lambda: next(reads)) == 1  # within the memo: not read again
    version.invalidate()  # a commit that wrote
    assert version.remember("probe", lambda: next(reads)) == 2
    assert version.remember("probe", lambda: next(reads), fresh=True) == 3  # caches off


def test_many_keys_stored_at_once_stay_bounded_and_never_fail() -> None:
    """Sixteen clients on different Outposts and ranges render at once: eviction runs while other
    threads store their entries, and memory stays within max_entries."""
    cache = FragmentCache(ttl=60, max_entries=8)
    failures: list[BaseException] = []

    def client(offset: int) -> None:
        try:
            for index in range(300):
                key = ("outpost", offset * 1000 + index)
                assert cache.get_or_render(key, 1, lambda k=key: k) == key
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can: races show
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert not failures
    assert len(cache._entries) <= 8
