"""A scripted HTTP/1.1 server on a real socket, for the controller fan-out's tests: each
request on a connection gets the bytes a test chooses (any framing, a close, no answer)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

#: Reply of a scripted connection: bytes to write (ending with CLOSE: then end the connection),
#: CLOSE (end it without answering) or HANG (read on, never answer).
CLOSE = b"<close>"
HANG = b"<hang>"


def ok(body: bytes, *, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    parts = [part for part in (body[:half], body[half:]) if part]
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\nx-trailer: 1\r\n\r\n"


def close_delimited(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + body


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 (its own event loop thread): the n-th request on a
    connection (from 0) gets ``reply(n)``; records every request head and connection."""

    def __init__(self, reply: Callable[[int], bytes]) -> None:
        self.reply = reply
        self.heads: list[bytes] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released when a client closes its connection
        self._loop = asyncio.new_event_loop()
        self._handlers: set[asyncio.Task[None]] = set()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            for n in range(1000):
                try:
                    self.heads.append(await reader.readuntil(b"\r\n\r\n"))
                except asyncio.IncompleteReadError:
                    self.closed.release()
                    return
                reply = self.reply(n)
                if reply == CLOSE:
                    return
                if reply == HANG:
                    await reader.read()  # until the client gives up and closes
                    self.closed.release()
                    return
                writer.write(reply.removesuffix(CLOSE))
                await writer.drain()
                if reply.endswith(CLOSE) or b"connection: close" in reply.split(b"\r\n\r\n")[0]:
                    return
        finally:
            writer.close()
            self._handlers.discard(task)

    def stop(self) -> None:
        async def shutdown() -> None:
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
