"""The start watchdog: executions whose processes cannot start end ``failed`` after ``slicer_timeout``.

Teraslice leaves such an execution ``initializing`` for ever (its pods Pending, its objects held).
Policy here, observations from the backend (``PENDING`` events carrying a
:class:`~teraslice_k8s.backend.base.StartState`):

- ``_pendingReason`` names the first waiting controller pod; a worker's reason only when no
  controller pod waits; ``""`` once nothing waits. Written only when it changes.
- The deadline is ``slicer_timeout`` after **allocation**: the backend's ``allocated_at`` (the
  controller Job's creation, which survives a master restart), else the execution record's
  ``_updated`` when the watchdog first sees it ``initializing`` (its allocation write, or after
  a master restart its last write), else the moment the watchdog first hears of it.
- At the deadline, an execution still ``scheduling``/``initializing`` whose controller the
  backend has not seen running fails with the controller pod's reason (or "still initializing"
  when no pod said why: no pod at all, or a backend that does not observe pods). One whose
  controller runs but of whose workers none ever ran while a worker pod waits fails with that
  worker's reason. Anything else has started: the watchdog forgets it (later worker losses are
  the controller's ``worker_disconnect_timeout``).
- Executions are found by the events, and by listing ``initializing`` ones every
  :attr:`PendingWatch.scan_interval` (so one with no pod at all, or no event, is still timed).

The local backend sends no ``PENDING`` events: its executions only meet the "still
``initializing``" rule, which a local controller that starts at all never hits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from teraslice_k8s.backend.base import BackendEvent, PodWait, StartState
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.execution import LIVING_STATUSES, ExStatus
from teraslice_k8s.store.base import ExFilter, Page, Record, RecordNotFound, Store
from teraslice_k8s.store.timestamps import parse_timestamp

log = logging.getLogger(__name__)

#: Statuses in which the controller has not reported itself running yet.
_NOT_STARTED = frozenset({ExStatus.SCHEDULING, ExStatus.INITIALIZING})
#: Statuses in which a start can still be in progress (workers not scheduled yet).
_STARTING = _NOT_STARTED | {ExStatus.RECOVERING, ExStatus.RUNNING}
#: Upper bound on the interval between two listings of ``initializing`` executions.
MAX_SCAN_INTERVAL = timedelta(seconds=5)


def pending_reason(event: BackendEvent) -> str:
    """The ``_pendingReason`` an event means: a waiting controller pod's first, else a worker's."""
    if event.start is None:
        return event.reason
    waits = _controller_waits(event.start) or _worker_waits(event.start)
    return waits[0].reason if waits else ""


def _controller_waits(state: StartState | None) -> list[PodWait]:
    return [w for w in (state.waiting if state else ()) if w.role == "execution_controller"]


def _worker_waits(state: StartState | None) -> list[PodWait]:
    return [w for w in (state.waiting if state else ()) if w.role == "worker"]


@dataclass(slots=True)
class _Start:
    """One execution being timed: since when, and what the backend last said."""

    since: datetime
    state: StartState | None = None
    worker_ran: bool = False


class PendingWatch:
    """Times the start of executions and fails those that cannot start (see the module doc).

    ``fail(ex_id, reason)`` must mark the execution ``failed`` with ``reason`` (and log it) and
    remove its processes. Thread-safe; the lifecycle thread calls :meth:`handle` and
    :meth:`check`.
    """

    def __init__(
        self,
        store: Store,
        settings: MasterSettings,
        *,
        now: Callable[[], datetime],
        fail: Callable[[str, str], None],
    ) -> None:
        self._store = store
        self._now = now
        self._fail = fail
        self.timeout = timedelta(milliseconds=settings.slicer_timeout_ms)
        self.scan_interval = min(MAX_SCAN_INTERVAL, self.timeout / 4)
        self._lock = threading.Lock()
        self._tracked: dict[str, _Start] = {}
        #: ex_id -> end of its start window, for executions resolved (started or failed).
        self._done: dict[str, datetime] = {}
        self._next_scan: datetime | None = None

    # -- observations -----------------------------------------------------------------------

    def handle(self, execution: Record, event: BackendEvent) -> None:
        """A ``PENDING`` event for ``execution`` (the record as read before any write)."""
        ex_id, status = execution["ex_id"], execution["_status"]
        if status not in LIVING_STATUSES:
            return
        reason = pending_reason(event)
        if reason != (execution.get("_pendingReason") or ""):
            self._store.update_execution(ex_id, {"_pendingReason": reason})
            if reason:
                log.info("execution %s is %s and waiting: %s", ex_id, status, reason)
            else:
                log.info("execution %s: no process of it waits any more", ex_id)
        if event.start is not None and status in _STARTING:
            self._observe(execution, event.start)

    def _observe(self, execution: Record, state: StartState) -> None:
        ex_id, status = execution["ex_id"], execution["_status"]
        now = self._now()
        with self._lock:
            if ex_id in self._done:
                return
            start = self._tracked.get(ex_id)
            if start is None:
                since = state.allocated_at
                if since is None and status in _NOT_STARTED:
                    since = parse_timestamp(execution.get("_updated"))
                since = min(since or now, now)
                if status not in _NOT_STARTED and now >= since + self.timeout:
                    return  # its start window is over: losing workers now is the controller's
                start = self._tracked[ex_id] = _Start(since)
            elif state.allocated_at is not None:
                start.since = state.allocated_at  # exact, where the first sight was a guess
            start.state = state
            start.worker_ran = start.worker_ran or state.workers_running > 0
            if start.worker_ran and (state.controller_running or status not in _NOT_STARTED):
                self._resolve(ex_id, start)

    def _resolve(self, ex_id: str, start: _Start) -> None:
        self._tracked.pop(ex_id, None)
        self._done[ex_id] = start.since + self.timeout

    # -- deadlines --------------------------------------------------------------------------

    def wait_seconds(self) -> float:
        """Seconds until :meth:`check` has something to do (a scan or a deadline)."""
        now = self._now()
        with self._lock:
            moments = [s.since + self.timeout for s in self._tracked.values()]
        moments.append(self._next_scan or now)
        return max(0.0, (min(moments) - now).total_seconds())

    def check(self) -> list[str]:
        """List ``initializing`` executions if a scan is due, then fail every timed execution
        past its deadline that has not started; returns the ex_ids failed."""
        now = self._now()
        if self._next_scan is None or now >= self._next_scan:
            self._next_scan = now + self.scan_interval
            self._scan(now)
        with self._lock:
            for ex_id in [e for e, end in self._done.items() if end <= now]:
                del self._done[ex_id]
            due = [(e, s) for e, s in self._tracked.items() if now >= s.since + self.timeout]
        failed = []
        for ex_id, start in due:
            try:
                execution = self._store.get_execution(ex_id)
            except RecordNotFound:
                execution = None
            with self._lock:
                self._resolve(ex_id, start)
            reason = self._verdict(execution, start) if execution else None
            if reason:
                self._fail(ex_id, reason)
                failed.append(ex_id)
        return failed

    def _scan(self, now: datetime) -> None:
        initializing = self._store.list_executions(
            ExFilter(statuses=(ExStatus.INITIALIZING,), deleted=None), Page(size=10_000, sort="_created:asc")
        )
        with self._lock:
            for execution in initializing:
                ex_id = execution["ex_id"]
                if ex_id not in self._tracked and ex_id not in self._done:
                    since = parse_timestamp(execution.get("_updated")) or now
                    self._tracked[ex_id] = _Start(min(since, now))

    def _verdict(self, execution: Record, start: _Start) -> str | None:
        """The failure reason of an execution at its deadline, ``None`` if it started."""
        ex_id, status, state = execution["ex_id"], execution["_status"], start.state
        after = f"{self.timeout.total_seconds():g}s after allocation (slicer_timeout)"
        if status in _NOT_STARTED and not (state and state.controller_running):
            waits = _controller_waits(state)
            if waits:
                return f"the execution controller of {ex_id} was not running {after}: {waits[0].reason}"
            return f"execution {ex_id} was still {status} {after}: its controller never reported running"
        if status in _STARTING and state and not start.worker_ran and not state.workers_running:
            waits = _worker_waits(state)
            if waits:
                return f"no worker of execution {ex_id} was running {after}: {waits[0].reason}"
        return None
