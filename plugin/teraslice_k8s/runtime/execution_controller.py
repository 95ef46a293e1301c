"""The execution controller: start-up, the run, shutdown; it wires its parts together.

Its parts: :mod:`.dispatch` (worker connections, dispatch, results), :mod:`.slicing`
(recovery and the slicers), :mod:`.status` (status writes), :mod:`.scheduler` (the rules),
:mod:`.state_writer` (batched slice state), :mod:`.server` (HTTP and the ``/worker`` websocket).

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
from teraslice_k8s.runtime.controller_events import ControllerEvents
from teraslice_k8s.runtime.dispatch import WorkerDispatch
from teraslice_k8s.runtime.metrics import start_metrics
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.pipeline import build_reader, operation_names
from teraslice_k8s.runtime.scheduler import Scheduler
from teraslice_k8s.runtime.server import ControllerServer, WorkerConnection
from teraslice_k8s.runtime.settings import RuntimeSettings, keepalive
from teraslice_k8s.runtime.signals import on_shutdown_signals
from teraslice_k8s.runtime.slicing import SliceProducer
from teraslice_k8s.runtime.state_writer import StateWriter
from teraslice_k8s.runtime.status import ExecutionStatus
from teraslice_k8s.store.base import Store

log = logging.getLogger(__name__)

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
        self.writer = StateWriter(store)
        self.scheduler = Scheduler(self.writer, max_retries=int(execution.get("max_retries", 3)))
        self.analytics = ExecutionAnalytics(self.scheduler, slicers=int(execution.get("slicers", 1)))
        self.events = ControllerEvents()
        self.status = ExecutionStatus(
            self.ex, store, self.scheduler, self.analytics, done=self.events.done, spawn=self._spawn
        )
        self.dispatch = WorkerDispatch(
            self.ex,
            self.scheduler,
            self.writer,
            self.events,
            op_names=operation_names(execution),
            spawn=self._spawn,
            on_failure=self.status.slice_failed,
        )
        self.producer = SliceProducer(
            self.ex, store, self.scheduler, self.analytics, events=self.events, writer=self.writer
        )
        self.ready = False
        interval, timeout = keepalive(settings)
        self.server = ControllerServer(self, host, port, ping_interval=interval, ping_timeout=timeout)
        self._shutdown = False
        self._fatal: str | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def connections(self) -> dict[str, WorkerConnection]:
        """The connected workers by id."""
        return self.dispatch.connections

    # -- ControllerHooks --

    def controller_stats(self) -> dict[str, Any]:
        return self.analytics.controller_stats(self.ex)

    def pause(self) -> None:
        self.scheduler.paused = True

    def resume(self) -> None:
        self.scheduler.paused = False
        self.events.kick.set()
        self.events.space.set()

    def set_log_level(self, level: str) -> None:
        set_level(level)
        self.dispatch.broadcast({"type": "loglevel", "level": level})

    def worker_connected(self, conn: WorkerConnection) -> None:
        self.dispatch.worker_connected(conn)

    def worker_disconnected(self, conn: WorkerConnection) -> None:
        self.dispatch.worker_disconnected(conn)

    def worker_message(self, conn: WorkerConnection, message: dict[str, Any]) -> None:
        self.dispatch.worker_message(conn, message)

    # -- tasks --

    def _spawn(self, coro: Awaitable[Any]) -> None:
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

    def _fail(self, reason: str) -> None:
        if self._fatal is None:
            self._fatal = reason
            log.error("%s", reason)
        self.events.done.set()

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
        self.status.current = await self._await_allocation()
        await self._step("allocated")
        if self.status.current == ExStatus.STOPPING:
            log.info(
                "execution %s is stopping: the execution controller exits without starting "
                "(the master marks it stopped once its processes are gone)",
                self.ex_id,
            )
            await self.server.stop()
            return 0
        if is_terminal(self.status.current):
            log.info("execution %s is already %s; nothing to do", self.ex_id, self.status.current)
            await self.server.stop()
            return 0
        if self.status.current in RUNNING_STATUSES:
            # Restarted after a crash: slicers here are not relocatable (Teraslice's rule).
            await self.status.write_terminal(
                ExStatus.FAILED,
                f"execution controller for {self.ex_id} restarted while the execution was "
                f'"{self.status.current}"; its slicers are not relocatable',
            )
            await self.server.stop()
            return 0
        if self._shutdown:
            # SIGTERM before the allocator was done: nothing ran, nothing to drain.
            await self.status.write_final(fatal=self._fatal, shutdown=self._shutdown, unfinished="")
            await self.server.stop()
            return 0
        self.dispatch.metrics = start_metrics("execution_controller", self.ex, self.settings)
        writer_task = asyncio.create_task(self.writer.run())
        writer_task.add_done_callback(self._task_done)
        dispatch_task = asyncio.create_task(self.dispatch.dispatch_loop())
        dispatch_task.add_done_callback(self._task_done)
        watch_task = asyncio.create_task(self.dispatch.watch_workers(self.settings, self._fail))
        slice_task: asyncio.Task[None] | None = None
        try:
            await self._start_up()
            if self._proceeding():
                slice_task = asyncio.create_task(self.producer.run(self._orders))
                slice_task.add_done_callback(self._task_done)
                await self._step("slicing")
            await self.events.done.wait()
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
        initialise the slicers; returns early (``events.done`` set) at the first step after which a
        stop, a shutdown or a failure is seen. Sets ``self._orders`` for the slice loop."""
        context = OpContext(
            self.ex,
            self.settings.connectors,
            logger=log,
            set_metadata=self._set_metadata,
            metrics=self.dispatch.metrics,
        )
        reader = build_reader(self.ex, context)
        self.producer.slicers = reader.make_slicers(int(self.ex.get("slicers", 1)))
        await self._step("slicers_made")
        recovering = bool(self.ex.get("recovered_execution"))
        if recovering and not all(type(s).recoverable for s in self.producer.slicers):
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
            end_after, recovery, self._orders = await self.producer.recover(
                lambda: bool(self._fatal) or self._shutdown
            )
            await self._step("recovered")
        if end_after:
            self.scheduler.slicers_done = True
            self.analytics.mark_queuing_complete()
            self.events.done.set()
            return
        if not self._proceeding():
            return
        for slicer in self.producer.slicers:
            await slicer.initialize(recovery)
        await self._step("slicers_initialized")
        if recovering and self._proceeding():
            await self._advance(ExStatus.RUNNING)

    def _proceeding(self) -> bool:
        """False once the start-up must not go on (shutdown, stop seen, failure, done)."""
        return not (self._shutdown or self.events.done.is_set())

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
            await self.status.set(status)
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
            self.events.done.set()

    async def _finish(self, dispatch_task: asyncio.Task[None], writer_task: asyncio.Task[None]) -> None:
        self.scheduler.paused = True
        unfinished = ""
        if self._shutdown and not self.scheduler.finished and self._fatal is None:
            margin = max(self.settings.shutdown_timeout - 2, 0.5)
            if self.scheduler.in_flight:
                self.events.idle.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.events.idle.wait(), margin)
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
        await self.status.write_final(fatal=self._fatal, shutdown=self._shutdown, unfinished=unfinished)
        await self.dispatch.shutdown_workers()
        for task in list(self._tasks):
            task.cancel()
        await self.server.stop()
        if self.dispatch.metrics is not None:
            self.dispatch.metrics.close()
