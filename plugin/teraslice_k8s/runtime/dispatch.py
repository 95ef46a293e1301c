"""The execution controller's worker side: connections, dispatch of slices, their results.

:class:`WorkerDispatch` receives the server's worker events (joined, message, left), feeds
them to the :class:`~teraslice_k8s.runtime.scheduler.Scheduler`, sends what it assigns, and
records results (analytics records through the state writer, metrics). Messages are those of
:mod:`teraslice_k8s.runtime.protocol`. It also watches that workers come (``slicer_timeout``)
and do not all stay away (``worker_disconnect_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from teraslice_k8s.runtime.controller_events import ControllerEvents
from teraslice_k8s.runtime.metrics import JobMetrics
from teraslice_k8s.runtime.scheduler import Outcome, Scheduler
from teraslice_k8s.runtime.server import WorkerConnection
from teraslice_k8s.runtime.settings import RuntimeSettings
from teraslice_k8s.runtime.slices import Slice
from teraslice_k8s.runtime.state_writer import StateWriter, analytics_records
from teraslice_k8s.runtime.status import first_line
from teraslice_k8s.store.timestamps import utc_now

#: The controller's parts log as the controller: one ``module`` in the logs for what the
#: execution controller does, as before it was split into modules.
log = logging.getLogger("teraslice_k8s.runtime.execution_controller")


def human_duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


class WorkerDispatch:
    def __init__(
        self,
        execution: Mapping[str, Any],
        scheduler: Scheduler,
        writer: StateWriter,
        events: ControllerEvents,
        *,
        op_names: list[str],
        spawn: Callable[[Awaitable[Any]], None],
        on_failure: Callable[[], None],
    ) -> None:
        self.ex_id = str(execution["ex_id"])
        self.job_id = str(execution["job_id"])
        self.collect_analytics = bool(execution.get("analytics", True))
        self.scheduler = scheduler
        self.writer = writer
        self.events = events
        self.op_names = op_names
        self._spawn = spawn
        #: Called for each slice that finally failed (the status side enters ``failing``).
        self._on_failure = on_failure
        self.metrics: JobMetrics | None = None
        self.connections: dict[str, WorkerConnection] = {}
        #: Results to acknowledge with each worker's next slice message.
        self._acks: dict[str, list[str]] = {}

    # -- the server's worker events --

    def worker_connected(self, conn: WorkerConnection) -> None:
        old = self.connections.get(conn.worker_id)
        if old is not None and old is not conn:
            self._requeue_lost(conn.worker_id)
        self.connections[conn.worker_id] = conn
        log.info(
            "worker %s %s (%d connected)",
            conn.worker_id,
            "reconnected" if old is not None else "joined",
            len(self.connections),
        )
        self.scheduler.worker_connected(conn.worker_id)
        ev = self.events
        ev.worker_seen.set()
        ev.worker_back.set()
        ev.all_gone.clear()
        ev.space.set()
        if ev.done.is_set():
            self._spawn(self.send(conn, {"type": "shutdown"}))

    def worker_disconnected(self, conn: WorkerConnection) -> None:
        if self.connections.get(conn.worker_id) is not conn:
            return  # an older connection of a worker that already reconnected
        del self.connections[conn.worker_id]
        log.info("worker %s left (%d connected)", conn.worker_id, len(self.connections))
        self._acks.pop(conn.worker_id, None)
        self._requeue_lost(conn.worker_id)
        if self.scheduler.online_workers == 0:
            self.events.worker_back.clear()
            self.events.all_gone.set()
        self.events.kick.set()

    def _requeue_lost(self, worker_id: str) -> None:
        for lost in self.scheduler.worker_disconnected(worker_id):
            log.warning("worker %s left with slice %s in flight", worker_id, lost.slice_id)
            self.after_result(failed=lost.state == "error")

    def worker_message(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "complete":
            self._on_results(conn, (message,), message.get("available"))
        elif kind == "results":
            self._on_results(conn, message.get("results") or (), message.get("available"))
        elif kind == "available":
            self.scheduler.worker_available(conn.worker_id, int(message.get("count", 1)))
            self.events.kick.set()
        elif kind == "shutdown":
            # The worker finished its slice and leaves; treat like a clean disconnect.
            self.worker_disconnected(conn)
        else:
            log.warning("unknown message type %r from %s", kind, conn.worker_id)

    def _on_results(self, conn: WorkerConnection, results: Iterable[dict[str, Any]], available: Any) -> None:
        """Slice results from ``conn``; ``available`` (true or a count) asks for more slices,
        and the results are then acknowledged with the next slice message."""
        more = int(available or 0)
        for result in results:
            slice_id = self._on_result(conn, result)
            if more:
                # Acknowledged with the worker's next slice message (one frame less per slice).
                self._acks.setdefault(conn.worker_id, []).append(slice_id)
            else:
                self._spawn(self.send(conn, {"type": "recorded", "slice_id": slice_id}))
        if more:
            self.scheduler.worker_available(conn.worker_id, more)
        self.events.kick.set()
        self.events.space.set()

    def _on_result(self, conn: WorkerConnection, message: dict[str, Any]) -> str:
        slice_id = str(message.get("slice_id"))
        error = message.get("error")
        records = int(message.get("records") or 0)
        slice_ = self.scheduler.outstanding.get(slice_id)
        outcome = self.scheduler.complete(conn.worker_id, slice_id, error=error, records=records)
        if outcome == Outcome.DUPLICATE:
            log.info("ignored duplicate result of slice %s from %s", slice_id, conn.worker_id)
        elif outcome == Outcome.RETRY:
            log.warning("slice %s failed, retrying: %s", slice_id, first_line(error))
        elif slice_ is not None:
            if self.metrics:
                self.metrics.slice_done(records, outcome == Outcome.FAILED)
            if outcome == Outcome.COMPLETED and self.collect_analytics and message.get("analytics"):
                self.writer.add_analytics(
                    analytics_records(
                        ex_id=self.ex_id,
                        job_id=self.job_id,
                        worker_id=conn.worker_id,
                        slice_=slice_,
                        op_names=self.op_names,
                        analytics=message["analytics"],
                        timestamp=utc_now(),
                    )
                )
            if outcome == Outcome.FAILED:
                log.error("slice %s failed: %s", slice_id, first_line(error))
            self.after_result(failed=outcome == Outcome.FAILED)
        return slice_id

    def after_result(self, *, failed: bool) -> None:
        """A slice left flight (finished, failed or lost): wake whoever waits for that."""
        if failed:
            self._on_failure()
        if not self.scheduler.in_flight:
            self.events.idle.set()
        if not self.scheduler.outstanding:
            self.events.recovery_drained.set()
        if self.scheduler.finished:
            self.events.done.set()

    # -- sending --

    async def send(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.send(message)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every connected worker (not waiting for the sends)."""
        for conn in list(self.connections.values()):
            self._spawn(self.send(conn, message))

    async def shutdown_workers(self) -> None:
        """Tell every connected worker the execution is over and close the connections."""
        conns = list(self.connections.values())
        await asyncio.gather(*(self.send(c, {"type": "shutdown"}) for c in conns))
        await asyncio.gather(*(c.close() for c in conns))

    async def dispatch_loop(self) -> None:
        """Send what the scheduler assigns, each time slices or workers became available;
        consecutive slices for one worker leave in one ``slices`` message."""
        kick = self.events.kick
        while True:
            await kick.wait()
            kick.clear()
            pairs = self.scheduler.assign()
            i = 0
            while i < len(pairs):
                worker_id = pairs[i][0]
                j = i + 1
                while j < len(pairs) and pairs[j][0] == worker_id:
                    j += 1
                await self._send_slices(worker_id, [s for _, s in pairs[i:j]])
                i = j
            if pairs:
                self.events.idle.clear()
                self.events.space.set()

    async def _send_slices(self, worker_id: str, slices: list[Slice]) -> None:
        conn = self.connections.get(worker_id)
        try:
            if conn is None:
                raise ConnectionError(worker_id)
            message: dict[str, Any]
            if len(slices) == 1:
                message = {"type": "slice", "slice": slices[0].message()}
            else:
                message = {"type": "slices", "slices": [s.message() for s in slices]}
            acks = self._acks.pop(worker_id, None)
            if acks:
                message["recorded"] = acks
            await conn.send(message)
        except Exception:
            for slice_ in reversed(slices):  # back to the front of the queue, in order
                self.scheduler.dispatch_failed(worker_id, slice_)
            self.events.kick.set()

    # -- watching --

    async def watch_workers(self, settings: RuntimeSettings, fail: Callable[[str], None]) -> None:
        """Calls ``fail`` when no worker connects within ``slicer_timeout``, or when every
        worker stays away for ``worker_disconnect_timeout``."""
        try:
            await asyncio.wait_for(self.events.worker_seen.wait(), settings.slicer_timeout)
        except TimeoutError:
            fail(
                "No workers have connected to slicer in the allotted time: "
                + human_duration(settings.slicer_timeout)
            )
            return
        while True:
            await self.events.all_gone.wait()
            try:
                await asyncio.wait_for(self.events.worker_back.wait(), settings.worker_disconnect_timeout)
            except TimeoutError:
                fail(f"All workers from workers from {self.ex_id} have disconnected")
                return
