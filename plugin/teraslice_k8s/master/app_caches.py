"""The response bodies one API app shares between requests: :class:`AppCaches`.

Rendering is the costly part of a listing or a cluster-state request, so concurrent and
repeated requests share a rendered body, never one staler than stated here:

- listings (``/jobs``, ``/ex``, ``/txt/jobs``, ``/txt/ex``): keyed by the store's records
  version (:class:`~teraslice_k8s.master.listing_cache.ListingCache`), so every job or
  execution write shows on the next request; a store without one renders per request;
- job listings when the store has no records version (:attr:`AppCaches.jobs`): keyed by the
  master's jobs generation and kept at most :data:`JOBS_TTL` (jobs written by another process
  show up after at most that long);
- bodies rendered from the cluster state (``/cluster/state``, ``/txt/workers``): keyed by the
  backend's ``state_version()`` where it has one
  (:class:`~teraslice_k8s.backend.base.StateVersioned`), and never older than
  :data:`CLUSTER_STATE_TTL`;
- ``/cluster/controllers`` (:attr:`AppCaches.controllers`): one live fan-out shared by the
  callers that arrived before it began (:class:`~teraslice_k8s.master.listing_cache.FreshShared`).

A body answered from a cache is offered to the fast path
(:class:`~teraslice_k8s.master.fast_listings.LearnedListings`), which then answers the same
request before routing for as long as the body is current.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from teraslice_k8s.master.fast_listings import LearnedListings
from teraslice_k8s.master.listing_cache import FreshShared, ListingCache
from teraslice_k8s.master.responses import RenderedCache, render_json
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import call

#: How long a rendered ``/cluster/state`` may be shared between requests (seconds); a backend with
#: a ``state_version()`` (:class:`~teraslice_k8s.backend.base.StateVersioned`) shows changes at once.
CLUSTER_STATE_TTL = 1.0
#: Upper bound on how long a rendered job listing is reused when the store has no records version
#: (jobs written by another process show up after at most this long); a store with one
#: (:class:`~teraslice_k8s.master.listing_cache.ListingCache`) shows every write at once.
JOBS_TTL = 2.0


class AppCaches:
    """The shared bodies of one app (made by ``create_app``; the TTLs are read then)."""

    def __init__(self, service: MasterService, learned: LearnedListings) -> None:
        self._service = service
        self._learned = learned
        self._state = RenderedCache(ttl=CLUSTER_STATE_TTL)
        #: Job listings of a store without a records version, by (filter, page, jobs generation).
        self.jobs = RenderedCache(ttl=JOBS_TTL)
        #: Listings by (what was asked, the store's records version).
        self.listings = ListingCache(service.store)
        #: The ``/cluster/controllers`` body, asked live from every running controller.
        self.controllers = FreshShared(lambda: call(lambda: render_json(service.all_controllers())))

    async def listing(self, what: Hashable, render: Callable[[], bytes]) -> bytes:
        """A listing's body: shared while the store's records are unchanged (ListingCache)."""
        listings = self.listings
        key, body = listings.cached(what)  # on the event loop: no thread-pool hop
        if key is not None:
            self._learned.offer(lambda: listings.cached(what)[1])
        if body is None:
            body = await call(listings.render, what, key, render)
        return body

    async def state_body(self, what: Hashable, render: Callable[[], bytes]) -> bytes:
        """A body rendered from the cluster state, shared between requests: keyed by the
        backend's state version where it has one (a process that joined or left shows at once),
        never served after CLUSTER_STATE_TTL."""
        backend, state_cache = self._service.backend, self._state
        version: Callable[[], Hashable] | None = getattr(backend, "state_version", None)
        if version is None:  # not StateVersioned: the TTL alone bounds the staleness
            self._learned.offer(lambda: state_cache.get(what))
            body = state_cache.get(what)  # fresh only: answered without a thread-pool hop
            if body is None:
                body = await call(state_cache.get_or_render, what, render)
            return body

        read_version: Callable[[], Hashable] = version
        if getattr(backend, "state_version_is_local", False):  # cheap: ask on the loop
            self._learned.offer(lambda: state_cache.get((what, read_version())))
            body = state_cache.get((what, read_version()))
            if body is not None:
                return body

        def versioned() -> bytes:
            key = (what, read_version())
            # Stored only if nothing changed while rendering, so a key never holds a later state.
            return state_cache.get_or_render(key, render, lambda: read_version() == key[1])

        rendered: bytes = await call(versioned)
        return rendered
