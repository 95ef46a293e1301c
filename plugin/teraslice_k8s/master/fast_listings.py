"""A fast path for cached listings: a ``GET`` whose body is already rendered for the current
store (or cluster state) version is answered by a small ASGI layer in front of the API, without
FastAPI's routing, dependencies and response objects (~2/3 of a cached answer's CPU, most of it
matching the path against ~100 routes).

The layer knows nothing about routes: it learns from the app. While a route answers from a
cache (:class:`~teraslice_k8s.master.listing_cache.ListingCache`, the cluster state cache), it
:meth:`~LearnedListings.offer` s a *lookup*: a function returning the body the route would
answer right now if it is stored for the current version, else None (the same check the route
makes first). When that answer is a complete ``200`` equal to what the lookup returns, the
layer keeps the lookup and the answer's headers for the request's path and query string (the
route's key is a function of them alone). The next ``GET`` of the same path and query string
asks the lookup; a body means the route would answer exactly it, so the layer sends it with
the same status and headers (``content-length`` set to the body's length). Anything else (no
body stored for the current version, another method, a path or query string not seen answered
so, a lookup that fails) goes to the app unchanged, which renders, stores and offers again.

So the layer never answers what the app would not: never stale (the lookup reads the version
as the route does), and byte-identical (the headers are the route's own, and uvicorn adds its
``date``/``server`` headers and the access log line to both paths alike).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Requests (path, query string) remembered; the oldest are forgotten first.
MAX_LEARNED: Final = 1024

Lookup = Callable[[], bytes | None]

#: The lookups offered while the app answers the current request (set by the layer).
_offers: contextvars.ContextVar[list[Lookup] | None] = contextvars.ContextVar(
    "fast_listing_offers", default=None
)


class _Learned:
    __slots__ = ("after", "before", "lookup")

    def __init__(self, lookup: Lookup, headers: list[tuple[bytes, bytes]]) -> None:
        self.lookup = lookup
        names = [name.lower() for name, _ in headers]
        at = names.index(b"content-length")
        self.before, self.after = headers[:at], headers[at + 1 :]

    def headers(self, length: int) -> list[tuple[bytes, bytes]]:
        return [*self.before, (b"content-length", str(length).encode()), *self.after]


class LearnedListings:
    """The requests the fast path may answer, learned from the app's own answers."""

    def __init__(self, max_entries: int = MAX_LEARNED) -> None:
        self._entries: dict[tuple[str, bytes], _Learned] = {}
        self._max = max_entries
        #: Requests the fast path answered (diagnostics, tests).
        self.answered = 0

    @staticmethod
    def offer(lookup: Lookup) -> None:
        """Called by a route as it answers from a cache: ``lookup`` returns the body it would
        answer to the same request now, or None when it would have to render. Ignored outside
        a request the layer passed to the app."""
        offers = _offers.get()
        if offers is not None:
            offers.append(lookup)

    def get(self, path: str, query: bytes) -> _Learned | None:
        return self._entries.get((path, query))

    def learn(self, path: str, query: bytes, lookup: Lookup, headers: list[tuple[bytes, bytes]]) -> None:
        key = (path, query)
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Learned(lookup, headers)

    def __len__(self) -> int:
        return len(self._entries)


class FastListingsMiddleware:
    """Answers learned ``GET`` requests from the caches; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, learned: LearnedListings) -> None:
        self.app = app
        self.learned = learned

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path, query = scope["path"], scope["query_string"]
        learned = self.learned.get(path, query)
        if learned is not None:
            body = _current(learned.lookup)
            if body is not None:
                self.learned.answered += 1
                await send(
                    {"type": "http.response.start", "status": 200, "headers": learned.headers(len(body))}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self._answer_and_learn(scope, receive, send, path, query)

    async def _answer_and_learn(
        self, scope: Scope, receive: Receive, send: Send, path: str, query: bytes
    ) -> None:
        offers: list[Lookup] = []
        start: Message | None = None
        body: Message | None = None

        async def capture(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body" and body is None:
                body = message
            await send(message)

        token = _offers.set(offers)
        try:
            await self.app(scope, receive, capture)
        finally:
            _offers.reset(token)
        if (
            len(offers) != 1
            or start is None
            or body is None
            or start["status"] != 200
            or body.get("more_body")
        ):
            return
        sent, headers = body.get("body", b""), list(start.get("headers", []))
        # Learned only when the lookup gives exactly what was sent (not when a write came
        # between the two, or the body was rendered for this request only).
        if _current(offers[0]) == sent and any(name.lower() == b"content-length" for name, _ in headers):
            self.learned.learn(path, query, offers[0], headers)


def _current(lookup: Lookup) -> bytes | None:
    try:
        return lookup()
    except Exception as error:  # the app meets it again and answers as it does
        log.debug("cached listing lookup failed: %s", error)
        return None
