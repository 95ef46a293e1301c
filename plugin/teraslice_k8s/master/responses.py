"""Response plumbing of the API: Teraslice's pretty JSON, the error body, cached bodies and
express-style trailing-slash routing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from teraslice_k8s.kubernetes.jsontext import js_pretty_json_bytes

log = logging.getLogger(__name__)


class PrettyJSONResponse(JSONResponse):
    """JSON with 4-space indentation, as Teraslice's ``app.set('json spaces', 4)``."""

    def render(self, content: Any) -> bytes:
        return render_json(content)


def render_json(content: Any) -> bytes:
    """``JSON.stringify(content, null, 4)``: Express's pretty JSON, numbers as JavaScript prints them."""
    return js_pretty_json_bytes(content)


def json_bytes_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


class RenderedCache:
    """Rendered response bodies by key (thread-safe, bounded), served only while fresh.

    A body is served for at most ``ttl`` seconds counted from when its render began (i.e. from
    when the data it shows was read), never after: the first request after that renders it
    again, and concurrent requests for a missing or expired key wait for that one render
    instead of rendering too. Keys that change with the data (a write generation, the
    backend's state version) make a change visible at once; the TTL bounds how long a change
    no key reflects (e.g. a job written by another process sharing the store) stays unseen.
    ``clock`` is injectable for tests. Bounded by count (``max_entries``) and by size
    (``max_bytes``: the oldest bodies go first; a body larger than that is not kept), so large
    listings under churning keys cannot hold the master's memory.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = 256,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: dict[Any, tuple[float, bytes]] = {}
        self._bytes = 0
        self._rendering: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        """The body for ``key`` if there is one that is still fresh."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def put(self, key: Any, body: bytes, *, read_at: float | None = None) -> None:
        """Store ``body``; it expires ``ttl`` after ``read_at`` (default: now)."""
        expires = (self._clock() if read_at is None else read_at) + self.ttl
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= len(old[1]) if old is not None else 0
            if len(body) > self.max_bytes:
                return
            if len(self._entries) >= self.max_entries:
                now = self._clock()
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._bytes = sum(len(e[1]) for e in self._entries.values())
            while self._entries and self._bytes + len(body) > self.max_bytes:
                oldest = next(iter(self._entries))  # insertion order: the oldest first
                self._bytes -= len(self._entries.pop(oldest)[1])
            self._entries[key] = (expires, body)
            self._bytes += len(body)

    def invalidate(self) -> None:
        """Forget every body (the next request for any key renders)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_or_render(
        self, key: Any, render: Callable[[], bytes], still_valid: Callable[[], bool] | None = None
    ) -> bytes:
        """The fresh body for ``key``; renders it (once for all waiting callers) when there is none.

        ``still_valid``, asked after a render, says whether ``key`` still describes the data (e.g.
        the version it names did not change while rendering); when it does not, the body goes
        to this caller only and is not stored.
        """
        body = self.get(key)
        if body is not None:
            return body
        with self._lock:
            key_lock = self._rendering.setdefault(key, threading.Lock())
        try:
            with key_lock:
                body = self.get(key)  # rendered by the caller this one waited for
                if body is None:
                    read_at = self._clock()
                    body = render()
                    if still_valid is None or still_valid():
                        self.put(key, body, read_at=read_at)
        finally:
            with self._lock:
                if self._rendering.get(key) is key_lock:
                    del self._rendering[key]  # keys such as generations are not reused
        return body


class TrailingSlashMiddleware:
    """``/jobs/`` is ``/jobs``, as in Teraslice's (non-strict) express routing; no redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/") and path != "/v1/":
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


class HeadAsGetMiddleware:
    """``HEAD`` answers like ``GET`` without a body, as Teraslice's express routes do (FastAPI
    routes declared with ``GET`` would otherwise answer 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def error_response(status: int, message: str, problems: list[str] | None = None) -> PrettyJSONResponse:
    body: dict[str, Any] = {"error": status, "message": message}
    if problems:
        body["problems"] = problems
    return PrettyJSONResponse(body, status_code=status)
