"""What pages and the API reuse between requests (issue 20): a read costs what it shows, not the fleet.

Two parts:

- `DataVersion`: the key of everything cached, read from the database (newest poll runs, Outpost,
  cluster and drill edits, this vantage's site views: a few indexed reads) at most every
  `memo` seconds per process, and at once after a commit through the app's session factory (a
  poll of the scheduler in this process, an edit on a page). Another process's writes (the CLI)
  show within `memo` seconds.
- `FragmentCache`: rendered fragments or answers per query, reused while the version is unchanged
  and for at most `ttl` seconds (`LIFELINE_OVERVIEW_CACHE_SECONDS`; 0 turns every cache off), with
  stale-while-revalidate so a burst of requests never queues behind one render.

Only what is the same for every signed-in person is shared between people: user box, CSRF token and
access panels are rendered per sign-in around it.

- `for_sign_in`: a page's whole response, reused for the same sign-in (session or API token) and
  URL while the version is unchanged, no write was committed in this process since, and for at most
  `ttl` seconds. The sign-in is checked on every request before it (a revoked session or a
  disabled user is refused at once); what it skips is rendering the page again for a wall
  display's tabs, an HTMX refresh or a reload within one poll. `for_sign_in_async` is the same for
  an `async` route: a reused answer that needs no read is replayed on the event loop, without a
  thread-pool hop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from app.services.connectivity import queries, site
from app.services.drills import uptime as drill_uptime

T = TypeVar("T")

# Longest a process answers from a version another process may have changed since.
VERSION_MEMO_SECONDS = 2.0


@dataclass(frozen=True)
class _Entry:
    fingerprint: object
    rendered_at: float
    body: Any


class FragmentCache:
    """Rendered fragments per query, reused while the data fingerprint is unchanged and the entry
    is younger than `ttl` seconds.

    Stale-while-revalidate: when an entry is stale, one request re-renders it and concurrent ones
    get the previous rendering at once instead of queueing behind the render (a render reads the
    whole fleet's history; a burst of refreshes must not pile up behind it). With no entry, or one
    older than `max_stale`, requests wait for the render.
    """

    def __init__(self, ttl: float, max_stale: float = 300.0, max_entries: int = 64) -> None:
        self.ttl = ttl
        self.max_stale = max_stale
        self.max_entries = max_entries
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 4 * self.max_entries:
                # Keys come from query strings: forget the locks nobody holds.
                self._locks = {k: lock for k, lock in self._locks.items() if lock.locked()}
            return self._locks.setdefault(key, threading.Lock())

    def _fresh(self, entry: _Entry | None, fingerprint: object, now: float) -> bool:
        return entry is not None and entry.fingerprint == fingerprint and now - entry.rendered_at < self.ttl

    def _store(self, key: tuple[Any, ...], fingerprint: object, body: object) -> None:
        # Renders of different keys finish at once: the eviction must not iterate the entries
        # while another thread adds one (lookups stay lock-free: a dict read is atomic).
        with self._guard:
            if len(self._entries) >= self.max_entries and key not in self._entries:
                # Memory stays bounded whatever queries arrive: the oldest half goes.
                oldest = sorted(self._entries.items(), key=lambda item: item[1].rendered_at)
                for old, _entry in oldest[: max(1, len(oldest) // 2)]:
                    del self._entries[old]
            self._entries[key] = _Entry(fingerprint, time.monotonic(), body)

    def peek(self, key: tuple[Any, ...], fingerprint: object) -> Any | None:
        """The entry for `key` if it is fresh, else None; takes no lock (for the event loop)."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        return entry.body if self._fresh(entry, fingerprint, time.monotonic()) else None  # type: ignore[union-attr]

    def get_or_render(
        self,
        key: tuple[Any, ...],
        fingerprint: object,
        render_fn: Callable[[], T],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """The entry for `key` if it is fresh, else `render_fn()`, stored unless `keep` says no."""
        if self.ttl <= 0:
            return render_fn()
        entry = self._entries.get(key)
        if self._fresh(entry, fingerprint, time.monotonic()):
            return entry.body  # type: ignore[union-attr,no-any-return]
        lock = self._lock(key)
        if entry is not None and time.monotonic() - entry.rendered_at < self.max_stale:
            if not lock.acquire(blocking=False):
                return entry.body  # type: ignore[no-any-return] # another request re-renders it
        else:
            lock.acquire()
        try:
            entry = self._entries.get(key)
            if self._fresh(entry, fingerprint, time.monotonic()):
                return entry.body  # type: ignore[union-attr,no-any-return]
            body = render_fn()
            if keep is None or keep(body):
                self._store(key, fingerprint, body)
            return body
        finally:
            lock.release()


_WROTE = "lifeline_page_cache_wrote"


def _mark_written(session: Session, _flush_context: object) -> None:
    session.info[_WROTE] = True


class DataVersion:
    """The version of what connectivity pages show, read at most every `memo` seconds, and again
    after a commit that wrote something through the session factory it watches (`watch`)."""

    def __init__(self, memo: float = VERSION_MEMO_SECONDS) -> None:
        self.memo = memo
        self._generation = 0
        self._guard = threading.Lock()
        self._watched: list[Any] = []
        self._remembered: dict[str, tuple[float, Any]] = {}

    @property
    def generation(self) -> int:
        """How many commits that wrote something this process has seen (`for_sign_in`'s key: a
        person's own credentials, tokens or notification settings are not in the version)."""
        return self._generation

    def invalidate(self, *_args: object) -> None:
        with self._guard:
            self._generation += 1
            self._remembered.clear()

    def remember(self, name: str, read: Callable[[], T], *, fresh: bool = False) -> T:
        """A per-process read kept at most `memo` seconds and forgotten after a commit that wrote:
        the version itself, and the vantage banner's look at the site probes."""
        held = self._remembered.get(name)
        now = time.monotonic()
        if held is not None and not fresh and now - held[0] < self.memo:
            return held[1]  # type: ignore[no-any-return]
        generation = self._generation
        value = read()
        with self._guard:
            if generation == self._generation:
                self._remembered[name] = (now, value)
        return value

    def peek(self, name: str) -> Any | None:
        """What `remember` holds for `name` if it is younger than `memo` seconds, else None."""
        held = self._remembered.get(name)
        if held is None or time.monotonic() - held[0] >= self.memo:
            return None
        return held[1]

    def watch(self, factory: Any) -> None:
        """Forget the version after every commit of a session from `factory` that flushed a change
        (once per factory; the commit of a request that only read keeps it)."""
        if factory is None or any(f is factory for f in self._watched):
            return
        with self._guard:
            if any(f is factory for f in self._watched):
                return
            event.listen(factory, "after_flush", _mark_written)
            event.listen(factory, "after_commit", self._after_commit)
            self._watched.append(factory)

    def _after_commit(self, session: Session) -> None:
        # Every request commits; only a transaction that wrote something changes the version.
        if session.info.pop(_WROTE, False):
            self.invalidate()

    def read(self, session: Session, vantage: str, *, fresh: bool = False) -> tuple[object, ...]:
        return self.remember(
            "version",
            lambda: (
                queries.data_fingerprint(session),
                site.marker(session, vantage),
                drill_uptime.marker(session),
            ),
            fresh=fresh,
        )


def process_version(request: Request) -> DataVersion:
    """This process's DataVersion, watching the app's session factory."""
    state = request.app.state
    version: DataVersion | None = getattr(state, "data_version", None)
    if version is None:
        version = state.data_version = DataVersion()
    version.watch(getattr(state, "session_factory", None))
    return version


def data_version(request: Request, session: Session) -> tuple[object, ...]:
    """The data version for this request (read once per request, shared by banner, page and API)."""
    known: tuple[object, ...] | None = getattr(request.state, "data_version", None)
    if known is not None:
        return known
    state = request.app.state
    version = process_version(request)
    # With the caches off (ttl 0) the version is read on every request too.
    value = version.read(session, state.settings.vantage, fresh=state.settings.overview_cache_seconds <= 0)
    return _held_for_request(request, value)


def _held_for_request(request: Request, value: tuple[object, ...]) -> tuple[object, ...]:
    request.state.data_version = value
    # The vantage banner reuses the poll-runs marker: no second look at poll_runs for this request.
    request.state.poll_marker = value[0][0]  # type: ignore[index]
    return value


def version_in_memory(request: Request) -> tuple[object, ...] | None:
    """The data version if this request can have it without reading the database (read for it
    already, or by this process less than `memo` seconds ago with no write committed since), else
    None. With the caches off it is read on every request, so never."""
    known: tuple[object, ...] | None = getattr(request.state, "data_version", None)
    if known is not None:
        return known
    if request.app.state.settings.overview_cache_seconds <= 0:
        return None
    value: tuple[object, ...] | None = process_version(request).peek("version")
    return None if value is None else _held_for_request(request, value)


def reusable_now(request: Request, cache: FragmentCache, key: tuple[Any, ...], *, per_process: bool) -> Any:
    """`cache`'s entry for `key` if it can be given without I/O (the version in memory, the entry
    fresh), else None: what an `async` route answers on the event loop. `per_process` adds this
    process's write generation to the version, as `for_sign_in` keys its answers."""
    version = version_in_memory(request)
    if version is None:
        return None
    return cache.peek(key, (version, process_version(request).generation) if per_process else version)


def shared_cache(request: Request, name: str, **options: Any) -> FragmentCache:
    """The process's cache called `name` (overview, outpost, api), with the overview cache's ttl;
    `options` (max_stale, max_entries) apply when it is first made."""
    state = request.app.state
    caches: dict[str, FragmentCache] | None = getattr(state, "page_caches", None)
    if caches is None:
        caches = state.page_caches = {}
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = FragmentCache(state.settings.overview_cache_seconds, **options)
    cache.ttl = state.settings.overview_cache_seconds
    return cache


# Whole responses kept per sign-in and URL: 16 sign-ins x 7 pages with room to spare. At the
# overview's size (about 180 KiB) that is at most 45 MiB, and the oldest half goes when it is full.
SIGN_IN_ENTRIES = 256
# Headers a cached answer must not carry to another request: its length is the body's again, and
# a cookie belongs to the request that set it (such an answer is not kept at all).
_NOT_REPLAYED = frozenset({b"content-length", b"set-cookie"})


@dataclass(frozen=True)
class _Answer:
    status_code: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def _keepable(response: Response) -> _Answer | Response:
    """The response as a replayable answer, or itself when it must not be reused: anything but a
    200 (a refusal, an error, a 503 while the database is away), a streamed body, a cookie."""
    body = getattr(response, "body", None)
    if (
        response.status_code != 200
        or not isinstance(body, bytes)
        or isinstance(response, StreamingResponse)
        or any(name == b"set-cookie" for name, _ in response.raw_headers)
    ):
        return response
    headers = tuple((name, value) for name, value in response.raw_headers if name not in _NOT_REPLAYED)
    return _Answer(response.status_code, headers, body)


def _sign_in_key(request: Request) -> tuple[Any, ...] | None:
    """`for_sign_in`'s key for this request, or None when its answer is never reused (nobody signed
    in, not a GET, the caches off)."""
    principal = getattr(request.state, "principal", None)
    if principal is None or request.method != "GET" or request.app.state.settings.overview_cache_seconds <= 0:
        return None
    hx = tuple(sorted((k, v) for k, v in request.headers.items() if k.startswith("hx-")))
    return (
        principal.session_id,
        principal.token_id,
        principal.user_id,
        principal.role,
        request.url.path,
        request.url.query,
        request.headers.get("host"),
        hx,
    )


def _sign_in_cache(request: Request) -> FragmentCache:
    return shared_cache(request, "sign_in", max_stale=0.0, max_entries=SIGN_IN_ENTRIES)


def _replay(answer: _Answer) -> Response:
    replay = Response(answer.body, status_code=answer.status_code)
    replay.raw_headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
    return replay


def for_sign_in(request: Request, session: Session, build: Callable[[], Response]) -> Response:
    """`build()`'s response, or the same response made for this sign-in and URL before, while the
    data version is the same, no write was committed in this process since, and it is younger than
    `LIFELINE_OVERVIEW_CACHE_SECONDS` (0: built every time).

    Call it after the route's role check: the sign-in is verified on every request, a reused
    answer only saves building it. The key is the session (its CSRF token and user box are in the
    page) or the API token, the role, the URL with its query, the host and the HTMX headers
    (fragment or page). Only 200s without cookies are kept. Requests of one sign-in for one URL
    that arrive while it is built wait for that build rather than get an older answer.
    """
    key = _sign_in_key(request)
    if key is None:
        return build()
    fingerprint = (data_version(request, session), process_version(request).generation)
    answer = _sign_in_cache(request).get_or_render(
        key, fingerprint, lambda: _keepable(build()), keep=lambda made: isinstance(made, _Answer)
    )
    return answer if isinstance(answer, Response) else _replay(answer)


async def for_sign_in_async(request: Request, session: Session, build: Callable[[], Response]) -> Response:
    """`for_sign_in` for an `async` route: an answer that can be reused without I/O (the version in
    memory, the answer fresh) is replayed here, on the event loop; anything else (reading the
    version, waiting for or doing the build) runs in the thread pool. With the sign-in looked up on
    the event loop too (`app.db_reader`), a reused page takes no thread-pool hop."""
    key = _sign_in_key(request)
    answer = reusable_now(request, _sign_in_cache(request), key, per_process=True) if key else None
    if isinstance(answer, _Answer):
        return _replay(answer)
    return await run_in_threadpool(for_sign_in, request, session, build)
