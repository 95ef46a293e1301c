"""What happens to executions after they started: backend events, stops, the reaper, reconcile.

Events (:class:`~teraslice_k8s.backend.base.BackendEvent`, from any backend thread) are queued
and handled on the lifecycle thread, which re-reads the execution first:

- ``CONTROLLER_SUCCEEDED`` / ``CONTROLLER_FAILED``: if the execution is still living (the
  controller did not write a terminal status) and not ``stopping``, it becomes ``failed`` with
  the backend's reason in ``_failureReason``; then its objects are removed.
- ``GONE``: a ``stopping`` execution becomes ``stopped`` once the stop check agrees (below);
  another living one (past scheduling) becomes ``failed``.
- ``PENDING``: :mod:`~teraslice_k8s.master.pending` stores ``_pendingReason`` (controller pod
  first) and times the start: an execution that cannot start within ``slicer_timeout`` of its
  allocation becomes ``failed`` with the pod's reason, and its objects are removed.

Stop flow (:meth:`Lifecycle.request_stop`, one state machine for every backend, see
docs/execution-lifecycle.md): ``-> stopping``, ``backend.stop_execution``, then ``-> stopped``
once nothing of the execution is left, and only then: ``backend.execution_ids()`` (which
counts processes still exiting, and on Kubernetes objects being deleted and Terminating pods)
no longer lists it and the allocator is not creating its objects. ``stopping`` wins over every
status a controller would write (the store refuses them); a refused ``stopped`` (the
controller wrote ``completed`` first) is fine. Executions still ``stopping`` after
``shutdown_timeout`` are force-stopped again (the reaper, run at start and every
``shutdown_timeout``), and still become ``stopped`` only once nothing is left.

:meth:`Lifecycle.reconcile` runs once at master start (see its docstring).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from teraslice_k8s.backend.base import Backend, BackendEvent, EventKind
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.pending import PendingWatch
from teraslice_k8s.master.settings import MasterSettings
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


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Lifecycle:
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
        self._store = store
        self._backend = backend
        self._allocator = allocator
        self._settings = settings
        self._now = now
        self._cond = threading.Condition()
        self._events: deque[BackendEvent] = deque()
        #: ex_id -> monotonic time of the last stop_execution call, for stops in progress.
        self._stopping: dict[str, float] = {}
        #: ex_id -> monotonic time the master last asked the backend to remove its objects.
        self._cleaning: dict[str, float] = {}
        self._busy = False
        self._closed = False
        #: A stop was requested since the thread last checked: check without waiting.
        self._stops_added = False
        self._generation = 0
        self._next_reap = 0.0
        self._thread: threading.Thread | None = None
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

    def _changed(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

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

    def _mark_stopped(self, ex_id: str, cause: str) -> None:
        with self._cond:
            self._stopping.pop(ex_id, None)
        try:
            if self._store.get_execution(ex_id)["_status"] == ExStatus.STOPPED:
                return  # already marked (the gone event and the stop check can both see it)
            self._store.set_status(ex_id, ExStatus.STOPPED)
            log.info("execution %s: stopping -> stopped (%s)", ex_id, cause)
        except InvalidTransition as err:  # e.g. the controller already wrote completed
            log.info("execution %s not marked stopped: %s", ex_id, err)
        except RecordNotFound:
            pass
        self._changed()

    def _check_stop(self, ex_id: str, cause: str, live: set[str] | None = None) -> bool:
        """Mark ``ex_id`` stopped if nothing of it is left (``live``: the backend's
        ``execution_ids()`` if already read); True if it was marked."""
        if self._allocator.allocating(ex_id):
            return False  # its objects may be about to exist; the allocator removes them
        if ex_id in (self._backend.execution_ids() if live is None else live):
            return False
        self._mark_stopped(ex_id, cause)
        return True

    def cleaning_up(self, ex_id: str) -> bool:
        """True while the master is removing the execution's processes/objects: a stop in
        progress, or a clean-up asked for within the last ``shutdown_timeout``."""
        horizon = time.monotonic() - self._settings.shutdown_timeout_ms / 1000
        with self._cond:
            for old in [e for e, t in self._cleaning.items() if t < horizon]:
                del self._cleaning[old]
            return ex_id in self._stopping or ex_id in self._cleaning

    def _stop_backend(self, ex_id: str, *, force: bool) -> None:
        with self._cond:
            self._cleaning[ex_id] = time.monotonic()
        try:
            self._backend.stop_execution(ex_id, force=force)
        except Exception:
            log.exception("could not remove the objects of execution %s", ex_id)

    # -- stop flow ------------------------------------------------------------------------

    def _track_stop(self, ex_id: str) -> None:
        with self._cond:
            self._stopping.setdefault(ex_id, time.monotonic())
            self._stops_added = self._thread is not None
            self._cond.notify_all()

    def request_stop(self, ex_id: str, *, force: bool = False) -> Record:
        """Start stopping an execution; returns its record after the status write.

        Terminal executions are left as they are (a force stop still removes leftover
        objects). Backend errors propagate (the status stays ``stopping`` and the reaper
        finishes it).
        """
        execution = self._store.get_execution(ex_id)
        status = execution["_status"]
        if is_terminal(status):
            if force:
                self._backend.stop_execution(ex_id, force=True)
            return execution
        if status != ExStatus.STOPPING:
            try:
                execution = self._store.set_status(ex_id, ExStatus.STOPPING)
                log.info(
                    "execution %s: %s -> stopping (%s requested)",
                    ex_id,
                    status,
                    "force stop" if force else "stop",
                )
            except InvalidTransition:
                execution = self._store.get_execution(ex_id)
                if is_terminal(execution["_status"]):
                    return execution
            self._changed()
        try:
            self._backend.stop_execution(ex_id, force=force)
        finally:
            with self._cond:
                self._stopping[ex_id] = self._cleaning[ex_id] = time.monotonic()
                self._stops_added = self._thread is not None
                self._cond.notify_all()
        return execution

    def check_stops(self) -> None:
        """Mark ``stopped`` every stopping execution whose processes are gone."""
        with self._cond:
            pending = dict(self._stopping)
        if not pending:
            return
        live = self._backend.execution_ids()
        retry_after = self._settings.shutdown_timeout_ms / 1000
        for ex_id, since in pending.items():
            if self._check_stop(ex_id, "none of its processes or objects is left", live):
                continue
            if time.monotonic() - since > retry_after and not self._allocator.allocating(ex_id):
                # Still there after a whole grace period: delete again, this time forcefully.
                log.warning(
                    "execution %s is still stopping after %.0f s: removing what is left by force",
                    ex_id,
                    retry_after,
                )
                with self._cond:
                    self._stopping[ex_id] = time.monotonic()
                self._stop_backend(ex_id, force=True)

    def wait_terminal(self, ex_id: str, timeout: float) -> Record:
        """Wait (bounded) until the execution is terminal; returns the last record read."""
        deadline = time.monotonic() + timeout
        poll = self._settings.stop_poll_ms / 1000
        while True:
            with self._cond:
                generation = self._generation
            execution = self._store.get_execution(ex_id)
            remaining = deadline - time.monotonic()
            if is_terminal(execution["_status"]) or remaining <= 0:
                return execution
            with self._cond:
                # Woken early by any status the master writes; the controller's own writes
                # (completed, failed) are seen on the next re-read.
                self._cond.wait_for(self._moved_on(generation), min(poll, remaining))

    def wait_changed(self, timeout: float) -> None:
        """Wait until the master writes an execution status, or ``timeout`` seconds pass."""
        with self._cond:
            generation = self._generation
            self._cond.wait_for(self._moved_on(generation), timeout)

    def _moved_on(self, generation: int) -> Callable[[], bool]:
        return lambda: self._generation != generation

    # -- reaper and reconcile -------------------------------------------------------------

    def reap(self) -> list[str]:
        """Force-stop executions ``stopping`` for over ``shutdown_timeout``; those with nothing
        left become ``stopped`` now (returned), the others once the stop check sees them gone
        (Teraslice sets ``stopped`` here whatever still runs)."""
        limit = self._now() - timedelta(milliseconds=self._settings.shutdown_timeout_ms)
        stuck = self._store.list_executions(
            ExFilter(statuses=(ExStatus.STOPPING,), deleted=None), Page(size=10_000, sort="_updated:asc")
        )
        reaped = []
        for execution in stuck:
            updated = _parse_ts(execution.get("_updated"))
            if updated is not None and updated > limit:
                continue
            ex_id = execution["ex_id"]
            log.warning(
                "execution %s has been stopping since %s: force-stopping it", ex_id, execution.get("_updated")
            )
            self._stop_backend(ex_id, force=True)
            self._track_stop(ex_id)
            if self._check_stop(ex_id, "force-stopped by the reaper; nothing of it is left"):
                reaped.append(ex_id)
        return reaped

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
