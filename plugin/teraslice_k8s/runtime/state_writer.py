"""Buffers slice state records and analytics records and writes them to the store in batches.

The execution controller is the only writer of state records (workers report results over
the websocket). Each change of a slice replaces its whole record, so the buffer keeps only the
changed slices and one flush is one ``create_slices`` call (upsert by ``slice_id``) of their
records as they are at the flush, plus one ``add_analytics`` call. Store calls are blocking and
run in a thread; a failed flush keeps the buffered records and is retried with backoff, and
after ``max_failures`` consecutive failures :meth:`StateWriter.run` raises (the controller then
fails the execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from teraslice_k8s.runtime.slices import Slice
from teraslice_k8s.store.base import Record, Store

log = logging.getLogger(__name__)


class StateWriter:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.05,
        max_batch: int = 2000,
        max_failures: int = 8,
        max_backlog: int = 20_000,
    ):
        self.store = store
        self.interval = interval
        self.max_batch = max_batch
        self.max_failures = max_failures
        #: Records waiting to be written above which :meth:`wait_room` holds back new slices.
        self.max_backlog = max_backlog
        self._room = asyncio.Event()
        self._room.set()
        #: Slices changed since the last flush (their record is built when it is written:
        #: a slice usually changes two or three times between two flushes).
        self._slices: dict[str, Slice] = {}
        self._analytics: list[Record] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closed = False

    # -- StateSink --

    def slice_changed(self, slice_: Slice) -> None:
        self._slices[slice_.slice_id] = slice_
        if len(self._slices) >= self.max_batch:
            self._wake.set()
        if len(self._slices) >= self.max_backlog:
            self._room.clear()

    def add_analytics(self, records: list[Record]) -> None:
        self._analytics.extend(records)
        if self.pending >= self.max_backlog:
            self._room.clear()

    def _check_room(self) -> None:
        if self.pending < self.max_backlog or self._closed:
            self._room.set()
        else:
            self._room.clear()

    async def wait_room(self) -> None:
        """Return once fewer than ``max_backlog`` records wait to be written (the slicer waits
        here: a store slower than the workers must slow the slicing down, not fill memory)."""
        await self._room.wait()

    @property
    def pending(self) -> int:
        return len(self._slices) + len(self._analytics)

    # -- flushing --

    def _write(self, slices: list[Record], analytics: list[Record]) -> None:
        if slices:
            self.store.create_slices(slices)
        if analytics:
            self.store.add_analytics(analytics)

    async def flush(self) -> None:
        """Write everything buffered so far; raises the store's error (buffer kept)."""
        async with self._lock:
            if not self._slices and not self._analytics:
                return
            slices, analytics = self._slices, self._analytics
            self._slices, self._analytics = {}, []
            try:
                records = [s.record() for s in slices.values()]
                await asyncio.to_thread(self._write, records, analytics)
            except BaseException:
                # Newer changes of the same slices win over the failed batch.
                slices.update(self._slices)
                self._slices = slices
                self._analytics = analytics + self._analytics
                raise
            finally:
                self._check_room()

    async def run(self) -> None:
        """Flush every ``interval`` (or sooner when the buffer is large) until :meth:`close`."""
        failures = 0
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("state write failed (%d/%d): %s", failures, self.max_failures, exc)
                if failures >= self.max_failures:
                    raise
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._room.set()  # nothing waits for a writer that stopped


def analytics_records(
    *,
    ex_id: str,
    job_id: str,
    worker_id: str,
    slice_: Slice,
    op_names: list[str],
    analytics: dict[str, Any],
    timestamp: str,
) -> list[Record]:
    """Teraslice analytics records (§5.5), one per operation, from a worker's ``analytics``
    (``{"time": [...ms], "size": [...], "memory": [...]}`` in operation order)."""
    times = analytics.get("time") or []
    sizes = analytics.get("size") or []
    memory = analytics.get("memory") or []
    out: list[Record] = []
    for order, op in enumerate(op_names):
        if order >= len(times):
            break
        out.append(
            {
                "@timestamp": timestamp,
                "ex_id": ex_id,
                "job_id": job_id,
                "worker_id": worker_id,
                "slice_id": slice_.slice_id,
                "slicer_id": slice_.slicer_id,
                "op": op,
                "state": "completed",
                "order": order,
                "count": sizes[order] if order < len(sizes) else 0,
                "time": times[order],
                "memory": memory[order] if order < len(memory) else 0,
            }
        )
    return out
