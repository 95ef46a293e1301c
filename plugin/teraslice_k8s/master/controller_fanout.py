"""Concurrent ``GET``s of a JSON object from many execution controllers at once: the direct
route of ``/cluster/controllers``' fan-out (one ``/analytics`` per running execution).

Why not httpx: a call costs ~0.7 ms of master CPU there (request building, cookies, httpcore,
h11) and needs a thread per call in flight, so 100 running controllers made one fan-out ~70 ms
of CPU in 16 threads contending for the GIL with the event loop that serves every other
request. Here each request of a fan-out is a coroutine on one private event loop (its own
thread, started on first use) over HTTP/1.1 keep-alive connections kept per address: ~20 us of
CPU per call.

The protocol subset, which the controllers' server (uvicorn) and any HTTP/1.x server speak:
``GET <path> HTTP/1.1`` with ``Host``, ``Accept: application/json`` and
``Accept-Encoding: identity``; the answer's body framed by ``Content-Length``, the chunked
transfer coding or the end of the connection; a 2xx status with a JSON object (parsed by the
standard library, as httpx's ``Response.json``) is the answer, anything else a failure.

Every request is bounded by its ``timeout`` (connect + answer). A failure says whether the
request reached a controller: :class:`NotConnected` (DNS failure, refused, connect timeout: no
controller saw it, so another route may send it) or :class:`Failed` (everything after). A kept
connection the controller closed while it was idle is noticed before it is used, or, when the
close crosses the request, by the answer ending before its first byte: the request is then sent
once more on a new connection (it is a ``GET``; httpcore does the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from teraslice_k8s import __version__

log = logging.getLogger(__name__)

#: Largest status line + headers, and largest body, of an answer (bytes).
HEAD_LIMIT: Final = 64 * 1024
BODY_LIMIT: Final = 16 * 1024 * 1024
#: Requests in flight at once (each holds a socket).
MAX_IN_FLIGHT: Final = 100
#: Kept connections per address, and how long one may stay unused (seconds).
MAX_IDLE_PER_ADDRESS: Final = 2
IDLE_TIMEOUT: Final = 30.0

#: A host name or IP address as it may appear in a request line's Host header.
_HOST: Final = re.compile(r"[A-Za-z0-9._\-:%]+")


class NotConnected(Exception):
    """The request reached no controller (DNS failure, refused, connect timeout)."""


class Failed(Exception):
    """The request was sent, or the answer is not a 2xx JSON object."""


class _Stale(Exception):
    """A kept connection ended before the first byte of the answer."""


Answer = dict[str, Any] | NotConnected | Failed
Address = tuple[str, int]


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < IDLE_TIMEOUT and not self.reader.at_eof() and not self.writer.is_closing()
        )


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (uvicorn[standard] brings it, and uvicorn serves the API on
    it): ~35% less CPU per call than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def valid_host(host: str) -> bool:
    """Whether ``host`` can be written into a request as it is (no spaces, no line breaks)."""
    return _HOST.fullmatch(host) is not None


class ControllerFanout:
    """``get_all`` is thread-safe and blocks its caller until every answer is in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle: dict[Address, list[_Connection]] = {}  # used on the loop's thread only

    def get_all(self, addresses: Sequence[Address], path: str, timeout: float) -> list[Answer]:
        """``GET path`` from every address at once; the answers in the addresses' order."""
        if not addresses:
            return []
        loop = self._running_loop()
        if loop is None:
            return [Failed("the controller client is closed") for _ in addresses]
        return asyncio.run_coroutine_threadsafe(self._get_all(addresses, path, timeout), loop).result()

    def close(self) -> None:
        """Close every kept connection and stop the loop (later calls fail)."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._closed:
                return None
            if self._loop is None:
                loop = _new_loop()
                thread = threading.Thread(target=loop.run_forever, name="ts-controller-fanout", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept = [conn for conns in self._idle.values() for conn in conns]
        self._idle.clear()
        await asyncio.gather(*(_close(conn) for conn in kept))

    async def _get_all(self, addresses: Sequence[Address], path: str, timeout: float) -> list[Answer]:
        await self._prune()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def one(address: Address) -> Answer:
            async with slots:
                return await self._get(address, path, timeout)

        return list(await asyncio.gather(*(one(address) for address in addresses)))

    async def _prune(self) -> None:
        """Close the kept connections that went unused too long or that the controller closed."""
        now = time.monotonic()
        stale: list[_Connection] = []
        for address, conns in list(self._idle.items()):
            keep = [conn for conn in conns if conn.usable(now)]
            stale += [conn for conn in conns if conn not in keep]
            if keep:
                self._idle[address] = keep
            else:
                del self._idle[address]
        await asyncio.gather(*(_close(conn) for conn in stale))

    def _kept(self, address: Address) -> _Connection | None:
        conns = self._idle.get(address)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.usable(now):
                return conn
            conn.writer.close()
        return None

    def _keep(self, address: Address, conn: _Connection) -> None:
        conns = self._idle.setdefault(address, [])
        if len(conns) >= MAX_IDLE_PER_ADDRESS:
            conn.writer.close()
            return
        conn.idle_since = time.monotonic()
        conns.append(conn)

    async def _get(self, address: Address, path: str, timeout: float) -> Answer:
        host, port = address
        url = f"http://{_host_header(host, port)}{path}"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {_host_header(host, port)}\r\nAccept: application/json\r\n"
            f"Accept-Encoding: identity\r\nUser-Agent: teraslice-k8s-master/{__version__}\r\n\r\n"
        ).encode("ascii")
        sent = False
        conn: _Connection | None = None  # the connection in use (closed when the exchange fails)
        try:
            async with asyncio.timeout(timeout):
                conn = self._kept(address)
                if conn is not None:
                    sent = True
                    try:
                        status, body = await self._exchange(address, conn, request, reused=True)
                    except _Stale:
                        conn.writer.close()
                        conn, sent = None, False
                if conn is None:
                    try:
                        reader, writer = await asyncio.open_connection(host, port, limit=HEAD_LIMIT)
                    except OSError as err:  # DNS failure (socket.gaierror), refused, unreachable
                        return NotConnected(f"GET {url} failed: {err}")
                    conn, sent = _Connection(reader, writer), True
                    status, body = await self._exchange(address, conn, request, reused=False)
        except TimeoutError:
            if conn is not None:
                conn.writer.close()
            if not sent:
                return NotConnected(f"GET {url} failed: no connection within {timeout:g} s")
            return Failed(f"GET {url} failed: no answer within {timeout:g} s")
        except Exception as err:  # reset, malformed answer, ...: one controller, not the fan-out
            if conn is not None:
                conn.writer.close()
            reason = str(err) if isinstance(err, Failed) else f"{type(err).__name__}: {err}"
            return Failed(f"GET {url} failed: {reason}")
        try:
            return _json_object(status, body)
        except Failed as err:
            return Failed(f"GET {url} failed: {err}")

    async def _exchange(
        self, address: Address, conn: _Connection, request: bytes, *, reused: bool
    ) -> tuple[int, bytes]:
        """Send ``request`` on ``conn`` and read the whole answer: (status, body). The
        connection is kept for the next request when the answer allows, else closed."""
        reader = conn.reader
        conn.writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as err:
            if reused and not err.partial:
                raise _Stale from err
            raise Failed("the connection closed before the answer") from err
        except ConnectionResetError as err:
            if reused:
                raise _Stale from err
            raise
        except asyncio.LimitOverrunError as err:
            raise Failed(f"the answer's head is longer than {HEAD_LIMIT} bytes") from err
        status, keep_alive, headers = _parse_head(head)
        body = await _read_body(reader, status, headers)
        if keep_alive:
            self._keep(address, conn)
        else:
            conn.writer.close()
        return status, body


def _json_object(status: int, body: bytes) -> dict[str, Any]:
    """The answer's JSON object (json.loads, as httpx's Response.json) if its status is 2xx."""
    if not 200 <= status < 300:
        raise Failed(f"HTTP {status}")
    try:
        value = json.loads(body)
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        raise Failed(f"the answer is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise Failed(f"returned {type(value).__name__}, not an object")
    return value


def _host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_head(head: bytes) -> tuple[int, bool, dict[bytes, bytes]]:
    """(status, whether the connection stays open, headers by lower-case name) of an answer."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not parts[1].isdigit():
        raise Failed(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise Failed(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get(b"connection", b"").lower()
    keep_alive = parts[0] == b"HTTP/1.1" and b"close" not in connection
    return int(parts[1]), keep_alive, headers


async def _read_body(reader: asyncio.StreamReader, status: int, headers: dict[bytes, bytes]) -> bytes:
    if status < 200 or status in (204, 304):
        raise Failed(f"HTTP {status} (no body)")
    coding = headers.get(b"content-encoding", b"identity").lower()
    if coding != b"identity":
        raise Failed(f"the answer is encoded ({coding.decode('latin-1')}) though identity was asked")
    transfer = headers.get(b"transfer-encoding")
    if transfer is not None:
        if transfer.lower() != b"chunked":
            raise Failed(f"unsupported transfer coding {transfer.decode('latin-1')}")
        return await _read_chunked(reader)
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit() or int(length) > BODY_LIMIT:
            raise Failed(f"bad or too large content-length {length[:40]!r}")
        return await reader.readexactly(int(length))
    body = b""
    while chunk := await reader.read(65536):  # framed by the end of the connection
        body += chunk
        if len(body) > BODY_LIMIT:
            raise Failed(f"the answer is longer than {BODY_LIMIT} bytes")
    return body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise Failed(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, then the end
                pass
            return body
        if len(body) + size > BODY_LIMIT:
            raise Failed(f"the answer is longer than {BODY_LIMIT} bytes")
        body += (await reader.readexactly(size + 2))[:-2]


async def _close(conn: _Connection) -> None:
    conn.writer.close()
    with contextlib.suppress(Exception):
        await conn.writer.wait_closed()
