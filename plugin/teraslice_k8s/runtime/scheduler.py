"""Slice queue, worker queue and the rules of dispatch, retry, re-dispatch and completion.

Pure bookkeeping, no I/O: the execution controller feeds it events (slices made, workers
joined/available/gone, slice results) and sends what :meth:`Scheduler.assign` returns. Every
state change of a slice is reported to a :class:`StateSink` (the buffered store writer).

Rules:
- Slices are dispatched FIFO to workers in the order they became available; a request with
  ``request_worker`` waits for that worker. A worker may ask for several slices (up to
  :data:`MAX_SLOTS` in flight): it then receives its next slices while it still works on the
  current one, which hides the round trip; consecutive slices for one worker leave in one
  message (docs/execution-lifecycle.md, "Dispatch").
- A failed slice is re-queued (at the back) until it failed ``max_retries + 1`` times in total,
  then its state becomes ``error``. (Teraslice retries inside the worker; here any worker may
  take the retry.)
- The in-flight slices of a worker that disconnects go back to the *front* of the queue; if that
  happens more than ``max_retries + 1`` times to the same slice it is marked ``error`` (a slice
  that kills every worker must not loop forever).
- A result for a slice that is no longer outstanding (a late duplicate after a re-dispatch) is
  acknowledged and ignored, so nothing is counted twice; a result for a re-queued slice is
  accepted and removes it from the queue.
- :attr:`Scheduler.finished`: slicers done, queue empty, nothing in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from teraslice_k8s.runtime.slices import Slice, SliceState
from teraslice_k8s.store.timestamps import utc_now


class StateSink(Protocol):
    def slice_changed(self, slice_: Slice) -> None:
        """The slice's state record must become ``slice_.record()``."""
        ...


class Outcome(StrEnum):
    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"
    DUPLICATE = "duplicate"


#: Most slices one worker may hold at once (the one it runs + the ones it prefetched); the
#: worker decides how many it asks for (:mod:`teraslice_k8s.runtime.worker`), this bounds it.
MAX_SLOTS = 32


@dataclass(slots=True)
class WorkerInfo:
    worker_id: str
    online: bool = True
    #: Times this worker is in the available queue.
    free: int = 0
    current: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Counters:
    """Counts kept for ExecutionAnalytics (§4.8) plus records (extension)."""

    processed: int = 0
    failed: int = 0
    records: int = 0
    workers_joined: int = 0
    workers_reconnected: int = 0
    workers_disconnected: int = 0
    lost: int = 0
    retried: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


class Scheduler:
    def __init__(self, sink: StateSink, *, max_retries: int) -> None:
        self.sink = sink
        self.max_retries = max_retries
        self.queue: deque[Slice] = deque()
        #: Unfinished slices by id (queued or in flight).
        self.outstanding: dict[str, Slice] = {}
        #: slice_id -> worker_id
        self.in_flight: dict[str, str] = {}
        self.workers: dict[str, WorkerInfo] = {}
        self.available: deque[str] = deque()
        self.paused = False
        self.slicers_done = False
        self.counters = Counters()

    # -- slices --

    def add_slices(self, slices: Iterable[Slice], *, write: bool = True) -> int:
        """Queue new slices (state ``pending`` written unless ``write`` is False)."""
        n = 0
        for s in slices:
            self.outstanding[s.slice_id] = s
            self.queue.append(s)
            if write:
                self.sink.slice_changed(s)
            n += 1
        return n

    @property
    def queued(self) -> int:
        return len(self.queue)

    @property
    def finished(self) -> bool:
        return self.slicers_done and not self.outstanding

    # -- workers --

    def worker_connected(self, worker_id: str) -> bool:
        """Returns True when this is a reconnect of a known worker id."""
        info = self.workers.get(worker_id)
        if info is not None:
            info.online = True
            self.counters.workers_reconnected += 1
            return True
        self.workers[worker_id] = WorkerInfo(worker_id)
        self.counters.workers_joined += 1
        return False

    def worker_available(self, worker_id: str, count: int = 1) -> None:
        """The worker has room for ``count`` more slices (what would pass :data:`MAX_SLOTS`
        is ignored)."""
        info = self.workers.get(worker_id)
        if info is None or not info.online:
            return
        count = min(count, MAX_SLOTS - info.free - len(info.current))
        if count <= 0:
            return
        info.free += count
        self.available.extend([worker_id] * count)

    def worker_disconnected(self, worker_id: str) -> list[Slice]:
        """Forget the worker's availability; re-queue (or fail) its in-flight slices."""
        info = self.workers.get(worker_id)
        if info is None or not info.online:
            return []
        info.online = False
        self.counters.workers_disconnected += 1
        if info.free:
            info.free = 0
            self.available = deque(w for w in self.available if w != worker_id)
        lost: list[Slice] = []
        for slice_id in reversed(info.current):
            if self.in_flight.get(slice_id) != worker_id:
                continue
            del self.in_flight[slice_id]
            s = self.outstanding[slice_id]
            s.lost_count += 1
            self.counters.lost += 1
            lost.append(s)
            if s.lost_count > self.max_retries + 1:
                self._finish(s, SliceState.ERROR, f"slice was lost with {s.lost_count} disconnected workers")
            else:
                self.queue.appendleft(s)
        info.current = []
        return lost[::-1]

    @property
    def online_workers(self) -> int:
        return sum(1 for w in self.workers.values() if w.online)

    @property
    def active_workers(self) -> int:
        return sum(1 for w in self.workers.values() if w.current)

    @property
    def available_workers(self) -> int:
        return len(set(self.available))

    # -- dispatch --

    def assign(self) -> list[tuple[str, Slice]]:
        """Pair queued slices with available workers; marks them in flight (state ``start``)."""
        pairs: list[tuple[str, Slice]] = []
        if self.paused:
            return pairs
        skipped: list[Slice] = []
        while self.queue and self.available:
            s = self.queue.popleft()
            wanted = s.request.get("request_worker")
            if wanted is not None:
                info = self.workers.get(str(wanted))
                if info is None or not info.free:
                    skipped.append(s)
                    continue
                self.available.remove(str(wanted))
                worker_id = str(wanted)
            else:
                worker_id = self.available.popleft()
            info = self.workers[worker_id]
            info.free -= 1
            info.current.append(s.slice_id)
            self.in_flight[s.slice_id] = worker_id
            s.state = SliceState.START
            s.updated = utc_now()
            self.sink.slice_changed(s)
            pairs.append((worker_id, s))
        self.queue.extendleft(reversed(skipped))
        return pairs

    def dispatch_failed(self, worker_id: str, s: Slice) -> None:
        """The send to ``worker_id`` failed: the slice goes back to the front of the queue."""
        if self.in_flight.get(s.slice_id) == worker_id:
            del self.in_flight[s.slice_id]
            info = self.workers.get(worker_id)
            if info is not None and s.slice_id in info.current:
                info.current.remove(s.slice_id)
            self.queue.appendleft(s)

    # -- results --

    def complete(self, worker_id: str, slice_id: str, *, error: str | None, records: int = 0) -> Outcome:
        """A worker reported a slice result; applies the retry and duplicate rules."""
        info = self.workers.get(worker_id)
        if info is not None and slice_id in info.current:
            info.current.remove(slice_id)
        s = self.outstanding.get(slice_id)
        if s is None:
            return Outcome.DUPLICATE
        if self.in_flight.get(slice_id) is not None:
            del self.in_flight[slice_id]
        else:  # re-queued after its worker vanished, but the result made it after all
            try:
                self.queue.remove(s)
            except ValueError:
                return Outcome.DUPLICATE
        if error is None:
            s.record_count = records
            self.counters.records += records
            self._finish(s, SliceState.COMPLETED, None)
            return Outcome.COMPLETED
        if s.retry_count < self.max_retries:
            s.retry_count += 1
            s.error = error
            self.counters.retried += 1
            self.queue.append(s)
            s.updated = utc_now()
            self.sink.slice_changed(s)
            return Outcome.RETRY
        self._finish(s, SliceState.ERROR, error)
        return Outcome.FAILED

    def _finish(self, s: Slice, state: SliceState, error: str | None) -> None:
        del self.outstanding[s.slice_id]
        s.state = state
        s.error = error
        s.updated = utc_now()
        self.counters.processed += 1
        if state == SliceState.ERROR:
            self.counters.failed += 1
        self.sink.slice_changed(s)
