"""The execution controller's single HTTP server: REST endpoints and the ``/worker`` websocket.

Starlette app served by uvicorn on the slicer port. Routes (the interface the master uses):
``GET /health`` (200 ``{"status":"ok"}`` when ready, else 503 ``{"status":"unavailable"}``),
``GET /analytics`` (ControllerStats), ``POST /pause``, ``POST /resume``,
``POST /loglevel?level=...``, websocket ``/worker`` (:mod:`teraslice_k8s.runtime.protocol`).
Signals are left to the controller (uvicorn's own handlers are disabled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from teraslice_k8s.runtime.protocol import WORKER_PATH, decode, encode

log = logging.getLogger(__name__)
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")


class WorkerConnection:
    """One worker websocket; ``send`` is safe to call from any task."""

    def __init__(self, ws: WebSocket, worker_id: str) -> None:
        self.ws = ws
        self.worker_id = worker_id

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(encode(message))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


class ControllerHooks(Protocol):
    ready: bool
    #: The execution this controller runs; a worker of another execution is refused.
    ex_id: str

    def controller_stats(self) -> dict[str, Any]: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def set_log_level(self, level: str) -> None: ...
    def worker_connected(self, conn: WorkerConnection) -> None: ...
    def worker_message(self, conn: WorkerConnection, message: dict[str, Any]) -> None: ...
    def worker_disconnected(self, conn: WorkerConnection) -> None: ...


def build_app(hooks: ControllerHooks) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        if hooks.ready:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    async def analytics(_: Request) -> JSONResponse:
        return JSONResponse(hooks.controller_stats())

    async def pause(_: Request) -> JSONResponse:
        hooks.pause()
        return JSONResponse({"status": "paused"})

    async def resume(_: Request) -> JSONResponse:
        hooks.resume()
        return JSONResponse({"status": "running"})

    async def loglevel(request: Request) -> JSONResponse:
        level = request.query_params.get("level", "")
        if level not in LOG_LEVELS:
            return JSONResponse(
                {"error": 400, "message": f"level: must be one of {', '.join(LOG_LEVELS)}"}, status_code=400
            )
        hooks.set_log_level(level)
        return JSONResponse({"level": level})

    async def worker(ws: WebSocket) -> None:
        await ws.accept()
        try:
            hello = decode(await ws.receive_text())
            worker_id = str(hello.get("worker_id") or "")
            if hello["type"] != "hello" or not worker_id:
                await ws.close(code=1008, reason="first message must be hello with a worker_id")
                return
            if hello.get("ex_id", hooks.ex_id) != hooks.ex_id:
                log.warning(
                    "refused worker %s of execution %s (this controller runs %s)",
                    worker_id,
                    hello.get("ex_id"),
                    hooks.ex_id,
                )
                await ws.close(code=1008, reason=f"this controller runs execution {hooks.ex_id}")
                return
        except (WebSocketDisconnect, ValueError, KeyError):
            return
        conn = WorkerConnection(ws, worker_id)
        hooks.worker_connected(conn)
        try:
            while True:
                hooks.worker_message(conn, decode(await ws.receive_text()))
        except WebSocketDisconnect:
            pass
        except ValueError as exc:
            log.warning("bad message from worker %s: %s", worker_id, exc)
        finally:
            hooks.worker_disconnected(conn)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/analytics", analytics, methods=["GET"]),
            Route("/pause", pause, methods=["POST"]),
            Route("/resume", resume, methods=["POST"]),
            Route("/loglevel", loglevel, methods=["POST"]),
            WebSocketRoute(WORKER_PATH, worker),
        ]
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The controller owns SIGTERM/SIGINT (graceful shutdown of the execution).
        yield


class ControllerServer:
    def __init__(
        self,
        hooks: ControllerHooks,
        host: str,
        port: int,
        *,
        ping_interval: float = 135.0,
        ping_timeout: float = 120.0,
    ) -> None:
        config = uvicorn.Config(
            build_app(hooks),
            host=host,
            port=port,
            # No uvicorn logging config: its warnings go to teraslice_k8s.logs's handler.
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            ws_max_size=64 * 1024 * 1024,
            # Slices and results are small JSON frames on a LAN: compression costs more CPU
            # than it saves (Teraslice sets perMessageDeflate: false as well).
            ws_per_message_deflate=False,
            ws_ping_interval=ping_interval,
            ws_ping_timeout=ping_timeout,
            timeout_graceful_shutdown=5,
        )
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the bind error
                raise OSError("controller server stopped during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
