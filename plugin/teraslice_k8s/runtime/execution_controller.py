"""The execution controller: slicing, dispatch, slice state, status, shutdown.

Contract (what the master and the backends rely on):
- Serves :mod:`teraslice_k8s.runtime.server` on ``host:port``; ``/health`` is 200 once the
  slicers are initialised and the status is ``running``/``recovering``.
- Status writes (through the store's checked ``set_status``): ``recovering`` (when
  ``recovered_execution`` is set), ``running``, ``failing`` (first slice failure; persistent
  jobs go back to ``running`` after a ``probation_window`` with new successes and no new
  failures), then at most one terminal status: ``completed``, ``failed`` (slice errors, slices
  stuck in ``start``, slicer error, no worker within ``slicer_timeout``, every worker gone for
  ``worker_disconnect_timeout``, store failure) or ``terminated`` (SIGTERM while the execution
  is not ``stopping``). Terminal writes carry ``_slicer_stats``, ``_has_errors`` and
  ``_failureReason`` like Teraslice.
- ``stopping`` wins (docs/execution-lifecycle.md): a controller that finds the execution
  ``stopping`` at any start-up step (:data:`STARTUP_STEPS`), or whose status write is refused
  because of it, starts nothing more, writes no status over it and exits 0; on SIGTERM while
  ``stopping`` it drains and records only ``_slicer_stats`` (``completed`` if the work finished
  first). The master writes ``stopped`` once no process of the execution is left.
- :meth:`ExecutionController.run` returns 0 after writing a terminal status itself, when the
  execution was already terminal at start, or after a stop; any exception escaping it is a
  crash (exit 1).
- SIGTERM/SIGINT: stop slicing and dispatching, wait up to ``shutdown_timeout`` (less a 2 s
  margin) for in-flight slices, leave unfinished slices ``pending``/``start`` for ``_recover``
  and name their count in ``_failureReason``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from teraslice_k8s.logs import set_level
from teraslice_k8s.models.execution import RUNNING_STATUSES, ExStatus, InvalidTransition, is_terminal
from teraslice_k8s.runtime.analytics import ExecutionAnalytics
from teraslice_k8s.runtime.metrics import JobMetrics, start_metrics
from teraslice_k8s.runtime.operations.base import OpContext, Slicer
from teraslice_k8s.runtime.pipeline import build_reader, operation_names
from teraslice_k8s.runtime.scheduler import Outcome, Scheduler
from teraslice_k8s.runtime.server import ControllerServer, WorkerConnection
from teraslice_k8s.runtime.settings import RuntimeSettings, keepalive
from teraslice_k8s.runtime.signals import on_shutdown_signals
from teraslice_k8s.runtime.slices import Slice
from teraslice_k8s.runtime.state_writer import StateWriter, analytics_records
from teraslice_k8s.store.base import Page, Record, SliceFilter, Store
from teraslice_k8s.store.timestamps import utc_now

log = logging.getLogger(__name__)

#: Recovery types that end the execution once the recovered slices are done.
CLEANUP_TYPES = frozenset({"errors", "pending", "all"})
#: Persistent slicers that return None are polled again after this many seconds.
PERSISTENT_POLL = 0.1
RECOVERY_BATCH = 5000
#: How often the status is re-read while the allocator has not yet set ``initializing``.
ALLOCATION_POLL = 0.05
#: The start-up steps, in order, after which the ``on_step`` hook is called (``recovered`` only
#: for a recovery). A stop seen after any of them ends the start-up there.
STARTUP_STEPS = (
    "serving",
    "allocated",
    "slicers_made",
    "status_written",
    "recovered",
    "slicers_initialized",
    "slicing",
)


def human_duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


class ExecutionController:
    def __init__(
        self,
        execution: Mapping[str, Any],
        store: Store,
        settings: RuntimeSettings,
        *,
        host: str = "0.0.0.0",
        port: int,
        on_step: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.ex: dict[str, Any] = dict(execution)
        self._on_step = on_step
        self._orders: dict[int, int] = {}
        self.ex_id = str(execution["ex_id"])
        self.store = store
        self.settings = settings
        self.host, self.port = host, port
        self.lifecycle = str(execution.get("lifecycle", "once"))
        self.writer = StateWriter(store)
        self.scheduler = Scheduler(self.writer, max_retries=int(execution.get("max_retries", 3)))
        self.analytics = ExecutionAnalytics(self.scheduler, slicers=int(execution.get("slicers", 1)))
        self.op_names = operation_names(execution)
        self.collect_analytics = bool(execution.get("analytics", True))
        self.ready = False
        self.connections: dict[str, WorkerConnection] = {}
        self.slicers: list[Slicer] = []
        self.metrics: JobMetrics | None = None
        interval, timeout = keepalive(settings)
        self.server = ControllerServer(self, host, port, ping_interval=interval, ping_timeout=timeout)
        self.status = ""
        self._kick = asyncio.Event()
        self._space = asyncio.Event()
        self._done = asyncio.Event()
        self._idle = asyncio.Event()
        self._worker_seen = asyncio.Event()
        self._worker_back = asyncio.Event()
        self._all_gone = asyncio.Event()
        self._recovery_drained = asyncio.Event()
        self._shutdown = False
        self._fatal: str | None = None
        self._failing = False
        self._failures_at_probation = 0
        self._successes_at_probation = 0
        self._status_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        #: Results to acknowledge with each worker's next slice message.
        self._acks: dict[str, list[str]] = {}

    # -- store helpers (blocking calls in a thread) --

    async def _set_status(self, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        async with self._status_lock:
            record = await asyncio.to_thread(self.store.set_status, self.ex_id, status, fields)
            previous, self.status = self.status, status
        _log_status(self.ex_id, previous, status, fields or {})
        return record

    # -- ControllerHooks --

    def controller_stats(self) -> dict[str, Any]:
        return self.analytics.controller_stats(self.ex)

    def pause(self) -> None:
        self.scheduler.paused = True

    def resume(self) -> None:
        self.scheduler.paused = False
        self._kick.set()
        self._space.set()

    def set_log_level(self, level: str) -> None:
        set_level(level)
        for conn in list(self.connections.values()):
            self._spawn(self._send(conn, {"type": "loglevel", "level": level}))

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
        self._worker_seen.set()
        self._worker_back.set()
        self._all_gone.clear()
        self._space.set()
        if self._done.is_set():
            self._spawn(self._send(conn, {"type": "shutdown"}))

    def worker_disconnected(self, conn: WorkerConnection) -> None:
        if self.connections.get(conn.worker_id) is not conn:
            return  # an older connection of a worker that already reconnected
        del self.connections[conn.worker_id]
        log.info("worker %s left (%d connected)", conn.worker_id, len(self.connections))
        self._acks.pop(conn.worker_id, None)
        self._requeue_lost(conn.worker_id)
        if self.scheduler.online_workers == 0:
            self._worker_back.clear()
            self._all_gone.set()
        self._kick.set()

    def _requeue_lost(self, worker_id: str) -> None:
        for lost in self.scheduler.worker_disconnected(worker_id):
            log.warning("worker %s left with slice %s in flight", worker_id, lost.slice_id)
            self._after_result(failed=lost.state == "error")

    def worker_message(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "available":
            self.scheduler.worker_available(conn.worker_id)
            self._kick.set()
        elif kind == "complete":
            self._on_complete(conn, message)
        elif kind == "shutdown":
            # The worker finished its slice and leaves; treat like a clean disconnect.
            self.worker_disconnected(conn)
        else:
            log.warning("unknown message type %r from %s", kind, conn.worker_id)

    def _on_complete(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        slice_id = str(message.get("slice_id"))
        error = message.get("error")
        records = int(message.get("records") or 0)
        slice_ = self.scheduler.outstanding.get(slice_id)
        outcome = self.scheduler.complete(conn.worker_id, slice_id, error=error, records=records)
        if message.get("available"):
            # Acknowledged with the worker's next slice message (one frame less per slice).
            self._acks.setdefault(conn.worker_id, []).append(slice_id)
        else:
            self._spawn(self._send(conn, {"type": "recorded", "slice_id": slice_id}))
        if outcome == Outcome.DUPLICATE:
            log.info("ignored duplicate result of slice %s from %s", slice_id, conn.worker_id)
        elif outcome == Outcome.RETRY:
            log.warning("slice %s failed, retrying: %s", slice_id, _first_line(error))
        elif slice_ is not None:
            if self.metrics:
                self.metrics.slice_done(records, outcome == Outcome.FAILED)
            if outcome == Outcome.COMPLETED and self.collect_analytics and message.get("analytics"):
                self.writer.add_analytics(
                    analytics_records(
                        ex_id=self.ex_id,
                        job_id=str(self.ex["job_id"]),
                        worker_id=conn.worker_id,
                        slice_=slice_,
                        op_names=self.op_names,
                        analytics=message["analytics"],
                        timestamp=utc_now(),
                    )
                )
            if outcome == Outcome.FAILED:
                log.error("slice %s failed: %s", slice_id, _first_line(error))
            self._after_result(failed=outcome == Outcome.FAILED)
        if message.get("available"):
            self.scheduler.worker_available(conn.worker_id)
        self._kick.set()
        self._space.set()

    def _after_result(self, *, failed: bool) -> None:
        if failed and not self._failing:
            self._failing = True
            self._spawn(self._enter_failing())
        if not self.scheduler.in_flight:
            self._idle.set()
        if not self.scheduler.outstanding:
            self._recovery_drained.set()
        if self.scheduler.finished:
            self._done.set()

    # -- tasks --

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._fail(f"execution controller error: {''.join(traceback.format_exception(exc))}")

    async def _send(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.send(message)

    def _fail(self, reason: str) -> None:
        if self._fatal is None:
            self._fatal = reason
            log.error("%s", reason)
        self._done.set()

    async def _dispatch_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            pairs = self.scheduler.assign()
            for worker_id, slice_ in pairs:
                conn = self.connections.get(worker_id)
                try:
                    if conn is None:
                        raise ConnectionError(worker_id)
                    message: dict[str, Any] = {"type": "slice", "slice": slice_.message()}
                    acks = self._acks.pop(worker_id, None)
                    if acks:
                        message["recorded"] = acks
                    await conn.send(message)
                except Exception:
                    self.scheduler.dispatch_failed(worker_id, slice_)
                    self._kick.set()
            if pairs:
                self._idle.clear()
                self._space.set()

    def _max_queue(self) -> int:
        workers = max(self.scheduler.online_workers, 1)
        return sum(s.max_queue_length(workers) for s in self.slicers) or 1

    async def _slice_loop(self, first_order: dict[int, int]) -> None:
        active = dict(enumerate(self.slicers))
        order = dict(first_order)
        persistent = self.lifecycle == "persistent"
        while active:
            while self.scheduler.paused or self.scheduler.queued >= self._max_queue():
                self._space.clear()
                await self._space.wait()
            produced = False
            # Fill the free queue space in one go (round-robin over the slicers) before
            # yielding to the event loop: one loop iteration per slice would cap dispatch.
            space = self._max_queue() - self.scheduler.queued
            while space > 0 and active:
                made = 0
                for slicer_id, slicer in list(active.items()):
                    result = await slicer.slice()
                    if result is None:
                        if not persistent:
                            del active[slicer_id]
                        continue
                    requests = result if isinstance(result, list) else [result]
                    if isinstance(result, list):
                        self.analytics.subslices += 1
                    new = []
                    for request in requests:
                        new.append(Slice.new(self.ex_id, slicer_id, order.get(slicer_id, 0), request))
                        order[slicer_id] = order.get(slicer_id, 0) + 1
                    made += self.scheduler.add_slices(new)
                if not made:
                    break
                produced = True
                space -= made
                if self.scheduler.paused:
                    break
            self._kick.set()
            if persistent and not produced:
                await asyncio.sleep(PERSISTENT_POLL)
            else:
                await asyncio.sleep(0)
        self.scheduler.slicers_done = True
        self.analytics.mark_queuing_complete()
        if self.scheduler.finished:
            self._done.set()

    async def _watch_workers(self) -> None:
        try:
            await asyncio.wait_for(self._worker_seen.wait(), self.settings.slicer_timeout)
        except TimeoutError:
            self._fail(
                "No workers have connected to slicer in the allotted time: "
                + human_duration(self.settings.slicer_timeout)
            )
            return
        while True:
            await self._all_gone.wait()
            try:
                await asyncio.wait_for(self._worker_back.wait(), self.settings.worker_disconnect_timeout)
            except TimeoutError:
                self._fail(f"All workers from workers from {self.ex_id} have disconnected")
                return

    async def _enter_failing(self) -> None:
        """First slice failure: ``failing``. Persistent jobs watch one ``probation_window`` at a
        time and go back to ``running`` after a window with successes and no new failure; a
        window with new failures while the stored status is ``running`` (the master resumed a
        paused execution meanwhile) writes ``failing`` again."""
        reason = f"execution {self.ex_id} has encountered a processing error, reason: " + (
            "slice failure watch dog" if self.lifecycle == "persistent" else "slice failure event"
        )
        if self._done.is_set():
            return
        await self._write_failing(reason)
        if self.lifecycle != "persistent":
            return
        window = float(self.ex.get("probation_window", 300_000)) / 1000
        counters = self.scheduler.counters
        while not self._done.is_set():
            failed, ok = counters.failed, counters.processed - counters.failed
            await asyncio.sleep(window)
            if counters.failed == failed and counters.processed - counters.failed > ok:
                break
            if counters.failed != failed and not self._done.is_set():
                current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
                if current.get("_status") == ExStatus.RUNNING:
                    await self._write_failing(reason)
        current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
        self._failing = False
        # Only undo our own "failing" (the master may have paused or stopped meanwhile).
        if not self._done.is_set() and current.get("_status") == ExStatus.FAILING:
            with contextlib.suppress(InvalidTransition):
                await self._set_status(ExStatus.RUNNING, {"_slicer_stats": self.analytics.stats()})

    async def _write_failing(self, reason: str) -> None:
        with contextlib.suppress(InvalidTransition):
            await self._set_status(
                ExStatus.FAILING,
                {"_has_errors": True, "_failureReason": reason, "_slicer_stats": self.analytics.stats()},
            )

    # -- recovery --

    async def _recover(self) -> tuple[bool, list[dict[str, Any]], dict[int, int]]:
        """Re-run the source execution's unfinished slices; returns (end_after, recovery data,
        next slicer_order per slicer)."""
        source = str(self.ex["recovered_execution"])
        kind = self.ex.get("recovered_slice_type")
        states = {"errors": ("error",), "pending": ("pending",)}.get(str(kind), ("pending", "start", "error"))
        seen: set[str] = set()
        while True:
            records = await asyncio.to_thread(
                self.store.list_slices,
                SliceFilter(ex_id=source, states=states),
                Page(size=RECOVERY_BATCH, sort="slicer_order:desc"),
            )
            batch = [Slice.from_record(r) for r in records if r["slice_id"] not in seen]
            if not batch:
                break
            seen.update(s.slice_id for s in batch)
            self._recovery_drained.clear()
            self.scheduler.add_slices(batch, write=False)
            self._kick.set()
            # A shutdown (stop) must not wait for slices no worker may ever finish.
            await _first_of(self._recovery_drained, self._done)
            if self._fatal or self._shutdown or self._done.is_set():
                break
        end_after = kind in CLEANUP_TYPES and not self.ex.get("autorecover")
        # Resume after the source's *newest* slice of each slicer, whatever its state: older
        # unfinished ones were just re-run above (Teraslice resumes after the last completed
        # one and so cuts again slices it has just recovered).
        newest = await asyncio.to_thread(
            self.store.list_slices, SliceFilter(ex_id=source), Page(size=1000, sort="slicer_order:desc")
        )
        last: dict[int, dict[str, Any]] = {}
        for rec in newest:
            last.setdefault(int(rec.get("slicer_id", 0)), rec)
        data = []
        orders = {}
        for slicer_id, rec in last.items():
            slice_ = Slice.from_record(rec)
            data.append(
                {"slicer_id": slicer_id, "lastSlice": {"request": slice_.request, **slice_.message()}}
            )
            orders[slicer_id] = slice_.slicer_order + 1
        return end_after, data, orders

    # -- main --

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run the execution to a terminal status (``handle_signals``: SIGTERM/SIGINT call
        :meth:`request_shutdown`; embedders and tests may call it themselves).

        A stop (the stored status ``stopping``, or SIGTERM) seen at any start-up step ends the
        start-up there: nothing more is started and no status is written over ``stopping``.
        """
        if handle_signals:
            on_shutdown_signals(self.request_shutdown)
        await self.server.start()  # /health answers 503 until ready
        await self._step("serving")
        self.status = await self._await_allocation()
        await self._step("allocated")
        if self.status == ExStatus.STOPPING:
            log.info(
                "execution %s is stopping: the execution controller exits without starting "
                "(the master marks it stopped once its processes are gone)",
                self.ex_id,
            )
            await self.server.stop()
            return 0
        if is_terminal(self.status):
            log.info("execution %s is already %s; nothing to do", self.ex_id, self.status)
            await self.server.stop()
            return 0
        if self.status in RUNNING_STATUSES:
            # Restarted after a crash: slicers here are not relocatable (Teraslice's rule).
            await self._write_terminal(
                ExStatus.FAILED,
                f"execution controller for {self.ex_id} restarted while the execution was "
                f'"{self.status}"; its slicers are not relocatable',
            )
            await self.server.stop()
            return 0
        if self._shutdown:
            # SIGTERM before the allocator was done: nothing ran, nothing to drain.
            await self._write_final_status("")
            await self.server.stop()
            return 0
        self.metrics = start_metrics("execution_controller", self.ex, self.settings)
        writer_task = asyncio.create_task(self.writer.run())
        writer_task.add_done_callback(self._task_done)
        dispatch_task = asyncio.create_task(self._dispatch_loop())
        dispatch_task.add_done_callback(self._task_done)
        watch_task = asyncio.create_task(self._watch_workers())
        slice_task: asyncio.Task[None] | None = None
        try:
            await self._start_up()
            if self._proceeding():
                slice_task = asyncio.create_task(self._slice_loop(self._orders))
                slice_task.add_done_callback(self._task_done)
                await self._step("slicing")
            await self._done.wait()
        except Exception:
            self._fail("".join(traceback.format_exc()))
        finally:
            for task in (slice_task, watch_task):
                if task is not None:
                    task.cancel()
        await self._finish(dispatch_task, writer_task)
        return 0

    async def _start_up(self) -> None:
        """Build the slicers, write ``recovering``/``running``, re-run the recovered slices and
        initialise the slicers; returns early (``_done`` set) at the first step after which a
        stop, a shutdown or a failure is seen. Sets ``self._orders`` for the slice loop."""
        context = OpContext(
            self.ex,
            self.settings.connectors,
            logger=log,
            set_metadata=self._set_metadata,
            metrics=self.metrics,
        )
        reader = build_reader(self.ex, context)
        self.slicers = reader.make_slicers(int(self.ex.get("slicers", 1)))
        await self._step("slicers_made")
        recovering = bool(self.ex.get("recovered_execution"))
        if recovering and not all(type(s).recoverable for s in self.slicers):
            raise RuntimeError("Slicer is not recoverable")
        if not self._proceeding() or not await self._advance(
            ExStatus.RECOVERING if recovering else ExStatus.RUNNING
        ):
            return
        self.analytics.mark_started()
        self.ready = True
        await self._step("status_written")
        recovery: list[dict[str, Any]] = []
        end_after = False
        if recovering and self._proceeding():
            end_after, recovery, self._orders = await self._recover()
            await self._step("recovered")
        if end_after:
            self.scheduler.slicers_done = True
            self.analytics.mark_queuing_complete()
            self._done.set()
            return
        if not self._proceeding():
            return
        for slicer in self.slicers:
            await slicer.initialize(recovery)
        await self._step("slicers_initialized")
        if recovering and self._proceeding():
            await self._advance(ExStatus.RUNNING)

    def _proceeding(self) -> bool:
        """False once the start-up must not go on (shutdown, stop seen, failure, done)."""
        return not (self._shutdown or self._done.is_set())

    async def _step(self, name: str) -> None:
        """Start-up step ``name`` (one of :data:`STARTUP_STEPS`) is done: log it and call the
        ``on_step`` hook (tests inject a stop exactly here)."""
        log.debug("execution controller %s: start-up step %s done", self.ex_id, name)
        if self._on_step is not None:
            await self._on_step(name)

    async def _advance(self, status: ExStatus) -> bool:
        """Write a non-terminal status; False (and shutdown) when the store refused it because
        the execution is ``stopping`` or already terminal (a stop won the race)."""
        try:
            await self._set_status(status)
        except InvalidTransition as exc:
            current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
            now = str(current.get("_status", ""))
            if now != ExStatus.STOPPING and not is_terminal(now):
                raise
            log.info(
                "execution %s is %s: the execution controller does not write %s and shuts down (%s)",
                self.ex_id,
                now,
                status,
                exc,
            )
            self.request_shutdown()
            return False
        return True

    async def _await_allocation(self) -> str:
        """The status once the allocator is done with it.

        The master starts this process between ``scheduling`` and ``initializing``; writing
        ``running`` before ``initializing`` lands would make the allocator's write fail
        (running -> init is refused) and tear the execution down. So wait (bounded by
        ``slicer_timeout``) while the status is still ``pending``/``scheduling``.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.slicer_timeout
        while True:
            current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
            status = str(current.get("_status", ""))
            if status not in (ExStatus.PENDING, ExStatus.SCHEDULING) or self._shutdown:
                return status
            if asyncio.get_running_loop().time() > deadline:
                return status
            await asyncio.sleep(ALLOCATION_POLL)

    def _set_metadata(self, key: str, value: Any) -> None:
        metadata = dict(self.ex.get("metadata") or {})
        metadata[key] = value
        self.ex["metadata"] = metadata
        self._spawn(asyncio.to_thread(self.store.update_execution, self.ex_id, {"metadata": metadata}))

    def request_shutdown(self) -> None:
        """SIGTERM: stop taking new work; :meth:`run` drains in-flight slices and exits."""
        if not self._shutdown:
            log.info("execution controller %s received shutdown", self.ex_id)
            self._shutdown = True
            self.scheduler.paused = True
            self._done.set()

    async def _finish(self, dispatch_task: asyncio.Task[None], writer_task: asyncio.Task[None]) -> None:
        self.scheduler.paused = True
        unfinished = ""
        if self._shutdown and not self.scheduler.finished and self._fatal is None:
            margin = max(self.settings.shutdown_timeout - 2, 0.5)
            if self.scheduler.in_flight:
                self._idle.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), margin)
            in_flight, queued = (
                len(self.scheduler.in_flight),
                len(self.scheduler.outstanding) - len(self.scheduler.in_flight),
            )
            unfinished = f" ({in_flight} slices in flight and {queued} queued did not finish)"
        dispatch_task.cancel()
        self.analytics.mark_finished()
        self.writer.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer_task
        await self.writer.flush()
        await self._write_final_status(unfinished)
        await self._broadcast_shutdown()
        for task in list(self._tasks):
            task.cancel()
        await self.server.stop()
        if self.metrics is not None:
            self.metrics.close()

    async def _write_final_status(self, unfinished: str) -> None:
        current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
        stopping = current.get("_status") in (ExStatus.STOPPING, ExStatus.STOPPED)
        if stopping and (self._fatal is not None or not self.scheduler.finished):
            # The master writes "stopped" once no process of the execution is left (this one
            # included); writing it here would announce the stop while processes still run.
            log.info(
                "execution %s is %s: the execution controller leaves the final status to the "
                "master and only records its slicer stats%s",
                self.ex_id,
                current.get("_status"),
                f" (not recorded as failed: {_first_line(self._fatal)})" if self._fatal else "",
            )
            await asyncio.to_thread(
                self.store.update_execution, self.ex_id, {"_slicer_stats": self.analytics.stats()}
            )
            return
        if self._fatal is not None:
            await self._write_terminal(ExStatus.FAILED, self._fatal)
            return
        if self._shutdown and not self.scheduler.finished:
            await self._write_terminal(
                ExStatus.TERMINATED,
                f"execution {self.ex_id} received shutdown before the slicer could complete, "
                f'setting status to "terminated"{unfinished}',
            )
            return
        counts = {}
        for state in ("error", "start", "pending"):
            counts[state] = await asyncio.to_thread(
                self.store.count_slices, SliceFilter(ex_id=self.ex_id, states=(state,))
            )
        parts = []
        if counts["start"]:
            parts.append(f"had {counts['start']} slice(s) stuck in started")
        if counts["pending"]:
            parts.append(f"had {counts['pending']} slice(s) are still pending")
        if counts["error"]:
            parts.append(f"had {counts['error']} slice failure(s)")
        if counts["error"] or counts["start"]:
            await self._write_terminal(
                ExStatus.FAILED, f"execution: {self.ex_id} " + ",".join(parts) + " during processing"
            )
        else:
            await self._write_terminal(ExStatus.COMPLETED, None)

    async def _write_terminal(self, status: ExStatus, reason: str | None) -> None:
        fields: dict[str, Any] = {"_slicer_stats": self.analytics.stats()}
        if reason is not None:
            fields["_has_errors"] = True
            fields["_failureReason"] = reason
        try:
            await self._set_status(status, fields)
        except InvalidTransition as exc:
            # e.g. the master already set a terminal status, or a stop landed; keep the stats.
            level = logging.INFO if exc.current == ExStatus.STOPPING else logging.WARNING
            log.log(level, "execution %s: %s not recorded: %s", self.ex_id, status, exc)
            await asyncio.to_thread(
                self.store.update_execution, self.ex_id, {"_slicer_stats": fields["_slicer_stats"]}
            )

    async def _broadcast_shutdown(self) -> None:
        conns = list(self.connections.values())
        await asyncio.gather(*(self._send(c, {"type": "shutdown"}) for c in conns))
        await asyncio.gather(*(c.close() for c in conns))


async def _first_of(*events: asyncio.Event) -> None:
    """Return as soon as any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _log_status(ex_id: str, previous: str, status: str, fields: Mapping[str, Any]) -> None:
    """One INFO line per status this controller writes, with the reason and, when the
    execution ends, what it processed."""
    details = []
    if fields.get("_failureReason"):
        details.append(_first_line(str(fields["_failureReason"])))
    stats = fields.get("_slicer_stats") or {}
    if is_terminal(status) and stats:
        details.append(
            f"{stats.get('processed', 0)} slices processed, {stats.get('failed', 0)} failed, "
            f"{stats.get('records', 0)} records"
        )
    suffix = f" ({'; '.join(details)})" if details else ""
    log.info("execution %s: %s -> %s%s", ex_id, previous or "initializing", status, suffix)


def _first_line(text: str | None) -> str:
    """The line that says what went wrong: a Python traceback's last line (its first is always
    ``Traceback (most recent call last):``), else the first line."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
