"""The worker: connects to its execution controller and runs the operation pipeline per slice.

Contract:
- Connects to ``ws://<slicer_hostname>:<slicer_port>/worker`` (every 50 ms until the first
  connection, then reconnecting with backoff doubling to 5 s); fails (exit 1) if no connection
  succeeds within ``slicer_timeout``, initially or after a lost connection.
- Per slice: reader fetch, then each processor in order; the result (records read, per-op
  ``time``/``size``/``memory`` analytics, the error stack on failure) goes back to the
  controller and is re-sent after a reconnect until acknowledged.
- SIGTERM/SIGINT: finish the current slice (up to ``shutdown_timeout``), report it, tell the
  controller it is leaving, run the operations' ``shutdown`` and exit 0.
- A ``shutdown`` message from the controller (the execution is over) ends the worker (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import secrets
import string
import time
import traceback
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from teraslice_k8s.logs import set_level
from teraslice_k8s.runtime.flush import flush_quietly
from teraslice_k8s.runtime.metrics import JobMetrics, start_metrics
from teraslice_k8s.runtime.operations.base import Batch, OpContext, Processor, Reader
from teraslice_k8s.runtime.pipeline import build_processors, build_reader
from teraslice_k8s.runtime.protocol import WORKER_PATH, decode, encode
from teraslice_k8s.runtime.scheduler import MAX_SLOTS
from teraslice_k8s.runtime.settings import RuntimeSettings, keepalive
from teraslice_k8s.runtime.signals import on_shutdown_signals

log = logging.getLogger(__name__)
_ID_ALPHABET = string.ascii_letters + string.digits + "_-"
FIRST_CONNECT_DELAY = 0.05
MAX_RECONNECT_DELAY = 5.0


#: Seconds to open the websocket to the controller (TCP connect + handshake).
OPEN_TIMEOUT = 10.0


def make_worker_id(hostname: str) -> str:
    """``<hostname>__<8-char nanoid>`` like Teraslice."""
    return f"{hostname}__{''.join(secrets.choice(_ID_ALPHABET) for _ in range(8))}"


def controller_url(execution: Mapping[str, Any]) -> str:
    host = execution.get("slicer_hostname") or "127.0.0.1"
    port = execution.get("slicer_port") or 45680
    return f"ws://{host}:{port}{WORKER_PATH}"


class ControllerGone(Exception):
    """No connection to the controller within the allowed time."""


class Worker:
    def __init__(
        self,
        execution: Mapping[str, Any],
        settings: RuntimeSettings,
        *,
        url: str | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.ex = execution
        self.settings = settings
        self.url = url or controller_url(execution)
        self.worker_id = worker_id or make_worker_id(settings.hostname)
        self.context = OpContext(execution, settings.connectors, worker_id=self.worker_id, logger=log)
        self.reader: Reader | None = None
        self.processors: list[Processor] = []
        self.metrics: JobMetrics | None = None
        #: Results not yet acknowledged by the controller: slice_id -> message.
        self.unacked: dict[str, dict[str, Any]] = {}
        self.stopping = asyncio.Event()
        self.busy = False
        self.slices_done = 0

    def request_shutdown(self) -> None:
        log.info("worker %s received shutdown", self.worker_id)
        self.stopping.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        if handle_signals:
            on_shutdown_signals(self.request_shutdown)
        # Metrics first: operations register theirs at initialize (OpContext.metrics).
        self.metrics = self.context.metrics = start_metrics("worker", self.ex, self.settings)
        try:
            self.reader = build_reader(self.ex, self.context)
            self.processors = build_processors(self.ex, self.context)
            for op in (self.reader, *self.processors):
                await op.initialize()
        except BaseException:
            if self.metrics is not None:
                self.metrics.close()
            raise
        # Long-lived start-up objects leave the GC's generations: fewer full-collection scans
        # while slices allocate millions of short-lived records.
        gc.freeze()
        try:
            code = await self._connection_loop()
            log.info("worker %s done: %d slices processed", self.worker_id, self.slices_done)
            return code
        except ControllerGone as exc:
            log.error("%s", exc)
            return 1
        finally:
            await flush_quietly(self.processors)  # window/accumulate emit what they hold
            for op in (self.reader, *self.processors):
                with contextlib.suppress(Exception):
                    await op.shutdown()
            if self.metrics is not None:
                self.metrics.close()

    async def _connection_loop(self) -> int:
        delay = FIRST_CONNECT_DELAY
        connected_once = False
        ping_interval, ping_timeout = keepalive(self.settings)
        deadline = time.monotonic() + self.settings.slicer_timeout
        while True:
            try:
                opened = await self._open(ping_interval, ping_timeout)
                if opened is None:  # a shutdown came while connecting
                    return 0
                async with opened as ws:
                    log.info(
                        "worker %s %s the execution controller at %s",
                        self.worker_id,
                        "reconnected to" if connected_once else "connected to",
                        self.url,
                    )
                    connected_once = True
                    delay = FIRST_CONNECT_DELAY
                    done = await self._session(ws)
                    if done:
                        return 0
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                # Expected while the controller starts; worth a line only once it had answered.
                log.log(
                    logging.INFO if connected_once else logging.DEBUG,
                    "controller %s unreachable: %s",
                    self.url,
                    exc,
                )
            if self.stopping.is_set() and not self.busy:
                return 0
            if time.monotonic() >= deadline:
                raise ControllerGone(
                    f"could not reach the execution controller at {self.url} "
                    f"within {self.settings.slicer_timeout:g}s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            # Before the first connection the controller is just starting: poll at a short,
            # fixed interval so the first slice is not delayed by backoff.
            if connected_once:
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
            deadline = min(deadline, time.monotonic() + self.settings.slicer_timeout)

    async def _open(self, ping_interval: float, ping_timeout: float) -> ClientConnection | None:
        """Open the connection to the controller, or None if a shutdown is requested first.

        A controller that is going away may accept the TCP connection and never answer the
        handshake; without this race a stopping worker would wait out :data:`OPEN_TIMEOUT`
        before it sees the shutdown.
        """
        opening = asyncio.ensure_future(
            connect(
                self.url,
                max_size=64 * 1024 * 1024,
                open_timeout=OPEN_TIMEOUT,
                compression=None,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
            )
        )
        stopping = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait((opening, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if opening.done():
            return opening.result()  # raises what connecting raised (handled by the caller)
        opening.cancel()
        with contextlib.suppress(BaseException):
            await opening
        return None

    async def _session(self, ws: ClientConnection) -> bool:
        """One connection; True when the worker is done (shutdown), False to reconnect."""
        await ws.send(encode({"type": "hello", "worker_id": self.worker_id, "ex_id": self.ex.get("ex_id")}))
        for message in list(self.unacked.values()):
            await ws.send(encode(message))
        if self.stopping.is_set():
            await ws.send(encode({"type": "shutdown"}))
            return True
        for _ in range(MAX_SLOTS):  # the second slot prefetches: no idle round trip per slice
            await ws.send(encode({"type": "available"}))
        stop_wait = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                recv = asyncio.ensure_future(ws.recv())
                await asyncio.wait({recv, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not recv.done():
                    recv.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await recv
                    await ws.send(encode({"type": "shutdown"}))
                    return True
                message = decode(recv.result())
                kind = message["type"]
                if kind == "slice":
                    for slice_id in message.get("recorded") or ():
                        self.unacked.pop(str(slice_id), None)
                    result = await self._run_slice(message["slice"])
                    result["available"] = not self.stopping.is_set()
                    self.unacked[result["slice_id"]] = result
                    await ws.send(encode(result))
                elif kind == "recorded":
                    self.unacked.pop(str(message.get("slice_id")), None)
                elif kind == "shutdown":
                    return True
                elif kind == "loglevel":
                    set_level(str(message.get("level", "info")))
        finally:
            stop_wait.cancel()

    async def _run_slice(self, slice_msg: Mapping[str, Any]) -> dict[str, Any]:
        assert self.reader is not None
        request = dict(slice_msg.get("request") or {})
        times: list[int] = []
        sizes: list[int] = []
        memory: list[int] = []
        records = 0
        error: str | None = None
        self.busy = True
        try:
            rss = _rss()
            t0 = time.perf_counter()
            batch: Batch = await self.reader.fetch(request)
            records = len(batch)
            t1 = time.perf_counter()
            times.append(round((t1 - t0) * 1000))
            sizes.append(len(batch))
            memory.append(_rss() - rss)
            for proc in self.processors:
                rss, t0 = _rss(), time.perf_counter()
                batch = await proc.process(batch, request)
                times.append(round((time.perf_counter() - t0) * 1000))
                sizes.append(len(batch))
                memory.append(_rss() - rss)
        except Exception as exc:
            error = traceback.format_exc()
            # One line naming the error; the traceback goes with it (text) or in "err" (json).
            log.error(
                "slice %s failed: %s: %s", slice_msg.get("slice_id"), type(exc).__name__, exc, exc_info=True
            )
        finally:
            self.busy = False
        self.slices_done += 1
        if self.metrics:
            self.metrics.slice_done(records, error is not None)
        result: dict[str, Any] = {
            "type": "complete",
            "slice_id": slice_msg["slice_id"],
            "records": records,
            "analytics": {"time": times, "size": sizes, "memory": memory},
            "error": error,
        }
        return result


def _rss() -> int:
    """Peak resident set size in bytes (Linux reports KiB); deltas approximate Teraslice's heap delta."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
