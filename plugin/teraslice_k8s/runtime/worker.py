"""The worker: connects to its execution controller and runs the operation pipeline per slice.

Contract:
- Connects to ``ws://<slicer_hostname>:<slicer_port>/worker`` (every 50 ms until the first
  connection, then reconnecting with backoff doubling to 5 s); fails (exit 1) if no connection
  succeeds within ``slicer_timeout``, initially or after a lost connection.
- Per slice: reader fetch, then each processor in order; the result (records read, per-op
  ``time``/``size``/``memory`` analytics, the error stack on failure) goes back to the
  controller and is re-sent after a reconnect until acknowledged. The worker holds a window of
  slices and reports short slices' results in groups (docs/execution-lifecycle.md, "Dispatch").
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
from collections import deque
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
#: A worker reports results in groups of about this much work (short slices only: a slice of
#: this length or more is reported on its own, and the worker holds at most the next one).
GROUP_SECONDS = 0.002
#: Most results in one group; the worker holds at most two groups (the controller's limit).
MAX_GROUP = MAX_SLOTS // 2


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
        #: The session's task while it waits for a message (a shutdown request cancels that wait).
        self._waiting: asyncio.Task[Any] | None = None
        self._cancelled_for_stop = False
        #: Moving average of the wall time of a slice (None before the first one).
        self._slice_seconds: float | None = None

    def request_shutdown(self) -> None:
        log.info("worker %s received shutdown", self.worker_id)
        self.stopping.set()
        if self._waiting is not None and not self._cancelled_for_stop:
            # Idle, waiting for a message: stop waiting (the session then says it leaves).
            self._cancelled_for_stop = True
            self._waiting.cancel()

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
        """One connection; True when the worker is done (shutdown), False to reconnect.

        The worker asks for a window of slices (:meth:`_window`: two groups, so the next group
        is already here when one is done), runs what it holds in order and reports results in
        groups (a group is sent when it is full or nothing more is held)."""
        await ws.send(encode({"type": "hello", "worker_id": self.worker_id, "ex_id": self.ex.get("ex_id")}))
        for unacked in list(self.unacked.values()):
            await ws.send(encode({**unacked, "available": 0}))
        if self.stopping.is_set():
            await ws.send(encode({"type": "shutdown"}))
            return True
        held: deque[dict[str, Any]] = deque()
        results: list[dict[str, Any]] = []
        #: Slices asked for and not received yet.
        asked = self._window()
        await ws.send(encode({"type": "available", "count": asked}))
        while True:
            if not held:
                message = await self._receive(ws)
                if message is None:  # stopping while waiting
                    await ws.send(encode({"type": "shutdown"}))
                    return True
                kind = message["type"]
                if kind in {"slice", "slices"}:
                    for slice_id in message.get("recorded") or ():
                        self.unacked.pop(str(slice_id), None)
                    new = [message["slice"]] if kind == "slice" else message["slices"]
                    held.extend(new)
                    asked = max(asked - len(new), 0)
                elif kind == "recorded":
                    self.unacked.pop(str(message.get("slice_id")), None)
                elif kind == "shutdown":
                    return True
                elif kind == "loglevel":
                    set_level(str(message.get("level", "info")))
                continue
            result = await self._run_slice(held.popleft())
            self.unacked[result["slice_id"]] = result
            results.append(result)
            stopping = self.stopping.is_set()
            if stopping or not held or len(results) >= self._group():
                more = 0 if stopping else max(self._window() - len(held) - asked, 0)
                asked += more
                if len(results) == 1:
                    result["available"] = more
                    await ws.send(encode(result))
                else:
                    await ws.send(encode({"type": "results", "results": results, "available": more}))
                results = []
                if stopping:
                    await ws.send(encode({"type": "shutdown"}))
                    return True

    async def _receive(self, ws: ClientConnection) -> dict[str, Any] | None:
        """The next message, or None when a shutdown is requested before one arrives
        (:meth:`request_shutdown` cancels this wait: cancelling ``recv`` loses no message)."""
        if self.stopping.is_set():
            return None
        task = asyncio.current_task()
        self._waiting = task
        try:
            return decode(await ws.recv())
        except asyncio.CancelledError:
            if task is None or not self._cancelled_for_stop:
                raise
            self._cancelled_for_stop = False
            task.uncancel()
            return None
        finally:
            self._waiting = None

    def _group(self) -> int:
        """Results per group: enough slices for about :data:`GROUP_SECONDS` of work, at least
        1 (slices of a few milliseconds or more go one by one, as in Teraslice), at most
        :data:`MAX_GROUP`."""
        if self._slice_seconds is None:
            return 1
        return max(1, min(MAX_GROUP, int(GROUP_SECONDS / max(self._slice_seconds, 1e-6))))

    def _window(self) -> int:
        """Slices to hold at once: two groups (the one running and the next)."""
        return 2 * self._group()

    async def _run_slice(self, slice_msg: Mapping[str, Any]) -> dict[str, Any]:
        assert self.reader is not None
        request = dict(slice_msg.get("request") or {})
        times: list[int] = []
        sizes: list[int] = []
        memory: list[int] = []
        records = 0
        error: str | None = None
        self.busy = True
        start = time.perf_counter()
        try:
            rss, t0 = _rss(), start
            batch: Batch = await self.reader.fetch(request)
            records = len(batch)
            for proc in (None, *self.processors):
                if proc is not None:
                    batch = await proc.process(batch, request)
                # Each operation's end is the next one's start (one clock and rusage read each).
                t1, rss1 = time.perf_counter(), _rss()
                times.append(round((t1 - t0) * 1000))
                sizes.append(len(batch))
                memory.append(rss1 - rss)
                t0, rss = t1, rss1
        except Exception as exc:
            error = traceback.format_exc()
            # One line naming the error; the traceback goes with it (text) or in "err" (json).
            log.error(
                "slice %s failed: %s: %s", slice_msg.get("slice_id"), type(exc).__name__, exc, exc_info=True
            )
        finally:
            self.busy = False
        took = time.perf_counter() - start
        avg = self._slice_seconds
        self._slice_seconds = took if avg is None else 0.8 * avg + 0.2 * took
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
