"""Rendered listings (``/v1/jobs``, ``?ex=``, ``/v1/ex``, ``/txt/jobs``, ``/txt/ex``) shared between
requests while the store's records have not changed, never after.

A body is keyed by what was asked (route, filter, page, fields...) and the store's records
version (:class:`~teraslice_k8s.store.base.RecordsVersioned`), which every job or execution write
changes, whichever process makes it: the master, an execution controller writing its status,
``teraslice-k8s run`` on the same SQLite file. The version is read before the render and again
after it; a body is stored only when both reads agree, so a stored body is exactly what the
store held while that version was current, and the next request after any write reads a new
version and renders again. Concurrent requests for one missing body share one render
(:class:`~teraslice_k8s.master.responses.RenderedCache`).

A store without ``records_version`` gets every listing rendered per request.

Reading the version on the event loop (no thread-pool hop) is what makes a cached answer cheap:
for SQLite (``records_version_is_local``) it is one single-row read on the event loop's own
connection, which in WAL mode never waits for a writer. Elasticsearch's version is a ``_stats``
request, so it is read in the thread pool, where a cached body still saves the searches and the
render.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable

from teraslice_k8s.master.responses import RenderedCache

log = logging.getLogger(__name__)

#: A body whose version is current is re-rendered after this long anyway (seconds): not needed
#: for correctness (the version is), it only bounds how long an unused body is kept.
VERSIONED_TTL = 60.0


class ListingCache:
    """Rendered listing bodies of one store, by (what was asked, records version)."""

    def __init__(self, store: object, max_entries: int = 256) -> None:
        self._version: Callable[[], Hashable] | None = getattr(store, "records_version", None)
        self._local = bool(getattr(store, "records_version_is_local", False))
        self._cache = RenderedCache(ttl=VERSIONED_TTL, max_entries=max_entries)

    @property
    def versioned(self) -> bool:
        """Whether the store says when its records change (else nothing is cached)."""
        return self._version is not None

    def cached(self, what: Hashable) -> tuple[Hashable | None, bytes | None]:
        """(key, body): the body for ``what`` if one is stored for the current version, when the
        store's version is a local read (cheap enough for the event loop); else (None, None) and
        :meth:`render` reads the version in its thread."""
        if self._version is None or not self._local:
            return None, None
        try:
            key = (what, self._version())
        except Exception as error:  # the render that follows meets it again and answers 500
            log.debug("records version unreadable: %s", error)
            return None, None
        return key, self._cache.get(key)

    def render(self, what: Hashable, key: Hashable | None, render: Callable[[], bytes]) -> bytes:
        """The body for ``what`` at ``key`` (from :meth:`cached`; None: read the version here),
        stored or rendered (once for concurrent callers) and stored if the version did not
        change meanwhile. Blocking: call it in a worker thread."""
        version = self._version
        if version is None:
            return render()
        if key is None:
            try:
                key = (what, version())
            except Exception as error:  # the render meets the store's error again: a 500
                log.debug("records version unreadable: %s", error)
                return render()
        expected = key[1] if isinstance(key, tuple) else None
        return self._cache.get_or_render(key, render, lambda: version() == expected)


class FreshShared:
    """One render shared by concurrent callers, never older than any of them: for answers no
    version describes (``/cluster/controllers`` asks every running controller live).

    A caller gets the result of a render that began after the caller arrived: the one it starts,
    or, when one is already running (begun before it arrived, so possibly older), the next one,
    which it shares with everyone who arrived meanwhile and which starts when the running one
    ends. N concurrent callers cost at most two renders instead of N, and nothing is kept
    between requests. Callers wait on the event loop (a future each, no thread each: 50 callers
    blocked in the thread pool took its threads and contended for the GIL); ``render`` is
    awaited, e.g. a blocking call run in the thread pool. A render's failure is raised to the
    callers it was for; the next caller starts a new render.
    """

    def __init__(self, render: Callable[[], Awaitable[bytes]]) -> None:
        self._render = render
        self._running: asyncio.Future[bytes] | None = None
        self._next: asyncio.Future[bytes] | None = None  # for those who arrived while one ran

    async def get(self) -> bytes:
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
            return await asyncio.shield(self._running)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    async def _run(self) -> bytes:
        try:
            return await self._render()
        finally:
            self._running = None
            waiting, self._next = self._next, None
            if waiting is not None:  # their render begins now, after every one of them arrived
                self._running = asyncio.ensure_future(self._run())
                self._running.add_done_callback(functools.partial(_settle, waiting))


def _settle(waiting: asyncio.Future[bytes], done: asyncio.Future[bytes]) -> None:
    """Pass a finished render's outcome to the future its callers wait on."""
    if waiting.cancelled():
        return
    if done.cancelled():
        waiting.cancel()
    elif (error := done.exception()) is not None:
        waiting.set_exception(error)
    else:
        waiting.set_result(done.result())
