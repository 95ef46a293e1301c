"""A stand-in execution controller HTTP server on 127.0.0.1 (a real socket), for tests that reach
a controller by a route other than an in-process mock (the emulator's service proxy, the local
backend). It answers the EC interface (``GET /analytics``, ``POST /pause``, ``POST /resume``,
``POST /loglevel?level=``), records every request, and answers a scripted status for a path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class SeenRequest:
    """What reached the controller: method, path and query parameters."""

    method: str
    path: str
    query: dict[str, str]


class FakeControllerServer:
    """Use as a context manager; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, analytics: dict[str, Any] | None = None) -> None:
        self.analytics: dict[str, Any] = analytics or {"processed": 0}
        #: (method, path) -> (status, JSON body) answered instead of the normal reply
        self.scripted: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the serving loop to notice it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-ec", daemon=True
        )
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeControllerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.requests)

    def _reply(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(SeenRequest(method, path, query))
            if (method, path) in self.scripted:
                return self.scripted[(method, path)]
        if method == "GET" and path == "/analytics":
            return 200, self.analytics
        if method == "POST" and path == "/pause":
            return 200, {"status": "paused"}
        if method == "POST" and path == "/resume":
            return 200, {"status": "running"}
        if method == "POST" and path == "/loglevel":
            return 200, {"level": query.get("level")}
        return 404, {"error": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = fake._reply(self.command, url.path, dict(parse_qsl(url.query)))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler
