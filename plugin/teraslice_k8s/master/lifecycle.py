"""What happens to executions after they started: backend events, the thread, reconcile.

Events (:class:`~teraslice_k8s.backend.base.BackendEvent`, from any backend thread) are queued
and handled on the lifecycle thread, which re-reads the execution first:

- ``CONTROLLER_SUCCEEDED`` / ``CONTROLLER_FAILED``: if the execution is still living (the
  controller did not write a terminal status) and not ``stopping``, it becomes ``failed`` with
  the backend's reason in ``_failureReason``; then its objects are removed.
- ``GONE``: a ``stopping`` execution becomes ``stopped`` once the stop check agrees (see
  :mod:`~teraslice_k8s.master.stop_flow`); another living one (past scheduling) becomes ``failed``.
- ``PENDING``: :mod:`~teraslice_k8s.master.pending` stores ``_pendingReason`` (controller pod
  first) and times the start: an execution that cannot start within ``slicer_timeout`` of its
  allocation becomes ``failed`` with the pod's reason, and its objects are removed.

The stop flow (:meth:`Lifecycle.request_stop`, the stop check and the reaper) is inherited from
:class:`~teraslice_k8s.master.stop_flow.StopFlow`; the lifecycle thread runs its checks: the
stop check after every batch of events, the reaper at start and every ``shutdown_timeout``.

:meth:`Lifecycle.reconcile` runs once at master start (see its docstring).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from teraslice_k8s.backend.base import Backend, BackendEvent, EventKind
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.pending import PendingWatch
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.stop_flow import StopFlow
from teraslice_k8s.models.execution import (
    LIVING_STATUSES,
    ExStatus,
    InvalidTransition,
    is_terminal,
)
from teraslice_k8s.store.base import ExFilter, Page, Record, RecordNotFound, Store

log = logging.getLogger(__name__)

#: Statuses in which the allocator, not the lifecycle, is responsible for the execution.
_ALLOCATING = frozenset({ExStatus.PENDING, ExStatus.SCHEDULING})


@dataclass(slots=True)
class ReconcileReport:
    """What :meth:`Lifecycle.reconcile` did, by ex_id."""

    adopted: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopping: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


class Lifecycle(StopFlow):
    """Owns every status the master writes after allocation. Thread-safe."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        allocator: Allocator,
        settings: MasterSettings,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(store, backend, allocator, settings, now=now)
        self._events: deque[BackendEvent] = deque()
        self._busy = False
        self._closed = False
        self._next_reap = 0.0
        #: Fails executions whose processes cannot start within slicer_timeout.
        self.pending = PendingWatch(store, settings, now=now, fail=self._fail_start)

    # -- thread ---------------------------------------------------------------------------

    def on_event(self, event: BackendEvent) -> None:
        """The backend's listener: queue the event for the lifecycle thread."""
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def start(self) -> None:
        if self._thread is None:
            self._next_reap = time.monotonic() + self._settings.shutdown_timeout_ms / 1000
            self._thread = threading.Thread(target=self._run, name="ts-lifecycle", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued event and requested stop is handled (for callers that must
        observe the result; a stop whose processes are still there counts as handled)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._events and not self._stops_added and not self._busy, timeout
            )

    def _run(self) -> None:
        poll = self._settings.stop_poll_ms / 1000
        while True:
            with self._cond:
                timeout = max(0.0, self._next_reap - time.monotonic())
                if self._stopping:
                    timeout = min(timeout, poll)
                timeout = min(timeout, self.pending.wait_seconds())
                self._cond.wait_for(lambda: self._closed or bool(self._events) or self._stops_added, timeout)
                if self._closed:
                    return
                events = list(self._events)
                self._events.clear()
                self._stops_added = False
                self._busy = True
            try:
                for event in events:
                    self._guarded(self.handle, event)
                self._guarded(self.check_stops)
                self._guarded(self.pending.check)
                if time.monotonic() >= self._next_reap:
                    self._next_reap = time.monotonic() + self._settings.shutdown_timeout_ms / 1000
                    self._guarded(self.reap)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    @staticmethod
    def _guarded(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # one bad execution must not stop the lifecycle thread
            log.exception("lifecycle step %s failed", getattr(fn, "__name__", fn))

    # -- events ---------------------------------------------------------------------------

    def handle(self, event: BackendEvent) -> None:
        """Apply one backend event (synchronously)."""
        ex_id = event.ex_id
        try:
            execution = self._store.get_execution(ex_id)
        except RecordNotFound:
            if event.kind != EventKind.GONE:
                log.warning("objects of unknown execution %s: removing them", ex_id)
                self._stop_backend(ex_id, force=False)
            return
        status = execution["_status"]
        if event.kind == EventKind.PENDING:
            self.pending.handle(execution, event)
            return
        if event.kind == EventKind.GONE:
            if status == ExStatus.STOPPING:
                self._track_stop(ex_id)
                self._check_stop(ex_id, "every process of the execution is gone")
            elif status in LIVING_STATUSES and status not in _ALLOCATING:
                self._fail(ex_id, event.reason or f"all processes of execution {ex_id} are gone")
            return
        if is_terminal(status) and status != ExStatus.STOPPED:
            _log_finished(execution)
        # The controller ended (its Job completed or failed). Mid-allocation (`scheduling`) the
        # failure is recorded too; the allocator then sees the refused transition and cleans up.
        if status in LIVING_STATUSES and status not in (ExStatus.STOPPING, ExStatus.PENDING):
            if event.kind == EventKind.CONTROLLER_FAILED:
                reason = event.reason or "the execution controller failed"
            else:
                reason = f"the execution controller exited while the execution was {status}"
                if event.reason:
                    reason = f"{reason}: {event.reason}"
            self._fail(ex_id, reason)
        self._stop_backend(ex_id, force=False)
        if status == ExStatus.STOPPING:
            self._track_stop(ex_id)

    def _fail(self, ex_id: str, reason: str) -> None:
        try:
            self._store.set_status(ex_id, ExStatus.FAILED, {"_failureReason": reason, "_has_errors": True})
            log.warning("execution %s failed: %s", ex_id, reason)
        except InvalidTransition as err:
            log.info("execution %s not marked failed: %s", ex_id, err)
        self._changed()

    def _fail_start(self, ex_id: str, reason: str) -> None:
        """The start watchdog's verdict: ``failed`` with ``reason``, then remove its objects."""
        self._fail(ex_id, reason)
        self._stop_backend(ex_id, force=False)

    # -- reconcile ------------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """Make the store and the backend agree after a master (re)start.

        - ``pending`` executions are re-enqueued (oldest first);
        - ``stopping`` ones resume their stop flow;
        - other living executions whose objects still run are adopted; those whose objects
          are gone (or that were caught mid-``scheduling``) become ``failed``;
        - objects whose execution is terminal or unknown are deleted;
        - then the reaper runs once.
        """
        report = ReconcileReport()
        live = self._backend.execution_ids()
        living = self._store.list_executions(
            ExFilter(statuses=tuple(sorted(LIVING_STATUSES)), deleted=None),
            Page(size=10_000, sort="_created:asc"),
        )
        known: set[str] = set()
        for execution in living:
            ex_id, status = execution["ex_id"], execution["_status"]
            known.add(ex_id)
            if status == ExStatus.PENDING:
                if ex_id in live:
                    self._stop_backend(ex_id, force=True)
                self._allocator.enqueue(ex_id)
                report.requeued.append(ex_id)
            elif status == ExStatus.STOPPING:
                if ex_id in live:
                    self._stop_backend(ex_id, force=False)
                self._track_stop(ex_id)
                report.stopping.append(ex_id)
            elif ex_id in live and status != ExStatus.SCHEDULING:
                report.adopted.append(ex_id)
            else:
                if ex_id in live:
                    self._stop_backend(ex_id, force=False)
                self._fail(
                    ex_id,
                    f"the master restarted while execution {ex_id} was {status} and its processes "
                    + ("were only partly created" if ex_id in live else "were gone"),
                )
                report.failed.append(ex_id)
        for ex_id in sorted(live - known):
            self._stop_backend(ex_id, force=False)
            report.deleted.append(ex_id)
        self.reap()
        log.info(
            "reconciled: adopted %s, requeued %s, failed %s, stopping %s, deleted objects of %s",
            report.adopted,
            report.requeued,
            report.failed,
            report.stopping,
            report.deleted,
        )
        return report


def _log_finished(execution: Record) -> None:
    """The line that says an execution's controller ended with the status it wrote."""
    stats = execution.get("_slicer_stats") or {}
    done = (
        f"{stats.get('processed', 0)} slices processed, {stats.get('failed', 0)} failed, "
        f"{stats.get('records', 0)} records"
    )
    lines = str(execution.get("_failureReason") or "").strip().splitlines()
    reason = f": {lines[0]}" if lines else ""
    log.log(
        logging.INFO if execution["_status"] == ExStatus.COMPLETED else logging.WARNING,
        "execution %s of job %s (%s) %s (%s)%s",
        execution["ex_id"],
        execution.get("job_id"),
        execution.get("name", ""),
        execution["_status"],
        done,
        reason,
    )
