"""The execution queue: starts pending executions on the backend, one at a time, in FIFO order.

Per execution (Teraslice's allocator, k8s-backend.md §7.2): ``pending -> scheduling``,
``backend.allocate_controller``, ``-> initializing`` with ``slicer_hostname``/``slicer_port``,
``backend.allocate_workers``. Any failure -> ``failed`` with ``_failureReason`` =
``"Failed to provision execution <id>: <error>"`` and ``backend.stop_execution`` so nothing
is left behind. An execution that is no longer ``pending`` when its turn comes (stopped while
queued) is skipped; one whose status changed during allocation (a stop landed) has its new
objects removed and its status left to the stop flow. The status is read again after the
workers are created, so a stop landing between the ``initializing`` write and the worker
creation cannot leave workers behind. While an execution is being allocated
(:meth:`Allocator.allocating`), the lifecycle does not mark it ``stopped``: its objects may not
exist yet.

The worker thread sleeps on a condition and wakes when something is enqueued (no polling).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from teraslice_k8s.backend.base import Backend
from teraslice_k8s.models.execution import ExStatus, InvalidTransition, is_terminal
from teraslice_k8s.store.base import RecordNotFound, Store

log = logging.getLogger(__name__)


class Allocator:
    """Thread-safe FIFO of ex_ids; :meth:`start` runs the allocation thread."""

    def __init__(self, store: Store, backend: Backend) -> None:
        self._store = store
        self._backend = backend
        self._queue: deque[str] = deque()
        self._cond = threading.Condition()
        self._busy = False
        #: The ex_id being allocated now (set when it leaves the queue, under the lock).
        self._current: str | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def enqueue(self, ex_id: str) -> None:
        with self._cond:
            if ex_id not in self._queue:
                self._queue.append(ex_id)
            self._cond.notify_all()

    def queued(self) -> list[str]:
        with self._cond:
            return list(self._queue)

    def allocating(self, ex_id: str) -> bool:
        """True while ``ex_id`` is being allocated (its objects may be about to exist)."""
        with self._cond:
            return self._current == ex_id

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ts-allocator", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """True once the queue is empty and no allocation is running (False on timeout)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._queue))
                if self._closed:
                    return
                ex_id = self._queue.popleft()
                self._current = ex_id
                self._busy = True
            try:
                self.allocate(ex_id)
            except Exception:  # the thread must survive anything one execution does
                log.exception("allocation of execution %s crashed", ex_id)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def allocate(self, ex_id: str) -> None:
        """Start one execution on the backend (synchronously; the thread calls this)."""
        with self._cond:
            self._current = ex_id
        try:
            self._allocate(ex_id)
        finally:
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def _allocate(self, ex_id: str) -> None:
        try:
            execution = self._store.get_execution(ex_id)
        except RecordNotFound:
            log.warning("queued execution %s no longer exists", ex_id)
            return
        if execution.get("_status") != ExStatus.PENDING:
            log.info("execution %s is %s, not pending; skipping", ex_id, execution.get("_status"))
            return
        try:
            self._store.set_status(ex_id, ExStatus.SCHEDULING)
        except InvalidTransition:
            log.info("execution %s changed status before scheduling; skipping", ex_id)
            return
        log.info("execution %s: pending -> scheduling (its turn in the allocation queue)", ex_id)
        created = False
        try:
            address = self._backend.allocate_controller(execution)
            created = True
            execution = self._store.set_status(
                ex_id,
                ExStatus.INITIALIZING,
                {"slicer_hostname": address.hostname, "slicer_port": address.port},
            )
            log.info(
                "execution %s: scheduling -> initializing (execution controller created at %s:%s)",
                ex_id,
                address.hostname,
                address.port,
            )
            self._backend.allocate_workers(execution)
            now = self._store.get_execution(ex_id)["_status"]
            if now == ExStatus.STOPPING or is_terminal(now):
                # A stop landed while the workers were being created: they may have been
                # created after the stop removed the execution's objects.
                log.info("execution %s became %s while its workers were created; removing them", ex_id, now)
                self._cleanup(ex_id)
        except InvalidTransition as err:
            # A stop (or the controller itself) moved the execution on while we were
            # allocating: leave the status to that actor, but do not leave objects behind.
            log.info("execution %s changed status during allocation (%s); removing its objects", ex_id, err)
            if created:
                self._cleanup(ex_id)
        except Exception as err:
            self._fail(ex_id, f"Failed to provision execution {ex_id}: {err}")
            self._cleanup(ex_id)

    def _fail(self, ex_id: str, reason: str) -> None:
        try:
            self._store.set_status(ex_id, ExStatus.FAILED, {"_failureReason": reason, "_has_errors": True})
            log.warning("execution %s: -> failed (%s)", ex_id, reason)
        except InvalidTransition as err:
            log.info("not marking execution %s failed: %s", ex_id, err)

    def _cleanup(self, ex_id: str) -> None:
        try:
            self._backend.stop_execution(ex_id)
        except Exception:
            log.exception("could not remove the objects of execution %s", ex_id)
