"""The stop flow: one state machine for every backend, and the waits on master status writes.

:meth:`StopFlow.request_stop` (see docs/execution-lifecycle.md): ``-> stopping``,
``backend.stop_execution``, then ``-> stopped`` once nothing of the execution is left, and only
then: ``backend.execution_ids()`` (which counts processes still exiting, and on Kubernetes
objects being deleted and Terminating pods) no longer lists it and the allocator is not creating
its objects. ``stopping`` wins over every status a controller would write (the store refuses
them); a refused ``stopped`` (the controller wrote ``completed`` first) is fine. Executions still
``stopping`` after ``shutdown_timeout`` are force-stopped again (:meth:`StopFlow.reap`, run at
start and every ``shutdown_timeout``), and still become ``stopped`` only once nothing is left.

:class:`StopFlow` holds the state the stop flow shares with the lifecycle thread (the condition,
the stops in progress, the status-write generation); :class:`~teraslice_k8s.master.lifecycle.Lifecycle`
extends it with the thread, backend events and reconcile. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from teraslice_k8s.backend.base import Backend
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.execution import ExStatus, InvalidTransition, is_terminal
from teraslice_k8s.store.base import ExFilter, Page, Record, RecordNotFound, Store
from teraslice_k8s.store.timestamps import parse_timestamp

# The stop flow logs under the lifecycle's logger, as it did before it had a module of its own:
# its lines are part of the lifecycle's story, and level settings and log readers match that name.
log = logging.getLogger("teraslice_k8s.master.lifecycle")


class StopFlow:
    """Stops executions and marks them ``stopped`` once nothing of them is left. Thread-safe."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        allocator: Allocator,
        settings: MasterSettings,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._backend = backend
        self._allocator = allocator
        self._settings = settings
        self._now = now
        self._cond = threading.Condition()
        #: ex_id -> monotonic time of the last stop_execution call, for stops in progress.
        self._stopping: dict[str, float] = {}
        #: ex_id -> monotonic time the master last asked the backend to remove its objects.
        self._cleaning: dict[str, float] = {}
        #: A stop was requested since the thread last checked: check without waiting.
        self._stops_added = False
        self._generation = 0
        #: The lifecycle thread, once started (stops then wake it instead of waiting for a poll).
        self._thread: threading.Thread | None = None

    def _changed(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

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

    # -- reaper ---------------------------------------------------------------------------

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
            updated = parse_timestamp(execution.get("_updated"))
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
