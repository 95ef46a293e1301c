"""Response plumbing of the API: Teraslice's pretty JSON, the error body, cached bodies and
express-style trailing-slash routing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    """Rendered response bodies by key (thread-safe, bounded), stale-while-revalidate.

    A body is fresh for ``ttl`` seconds; after that it is still served while one background
    thread renders its replacement, so no request waits on a re-render and concurrent misses
    render once. Keys that change with the data (e.g. a write generation) make a write visible
    at once; the TTL bounds the staleness of data this process cannot see being written.
    """

    def __init__(self, ttl: float, max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[float, bytes]] = {}
        self._rendering: dict[Any, threading.Lock] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ts-render")

    def get(self, key: Any) -> bytes | None:
        """The body for ``key`` if there is one (fresh or not)."""
        with self._lock:
            entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: Any, body: bytes) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, body)

    def get_or_render(self, key: Any, render: Callable[[], bytes]) -> bytes:
        """The body for ``key``; renders it (once for all waiting callers) when there is none."""
        with self._lock:
            entry = self._entries.get(key)
            stale = entry is not None and entry[0] < time.monotonic() and key not in self._refreshing
            if stale:
                self._refreshing.add(key)
        if entry is not None:
            if stale:
                self._refresher.submit(self._refresh, key, render)
            return entry[1]
        with self._lock:
            key_lock = self._rendering.setdefault(key, threading.Lock())
        with key_lock:
            body = self.get(key)
            if body is None:
                body = render()
                self.put(key, body)
        return body

    def _refresh(self, key: Any, render: Callable[[], bytes]) -> None:
        try:
            self.put(key, render())
        except Exception:
            log.exception("re-rendering a cached response failed; the old one stays in use")
        finally:
            with self._lock:
                self._refreshing.discard(key)


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
