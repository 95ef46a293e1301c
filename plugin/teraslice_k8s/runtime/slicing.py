"""The execution controller's slicer side: recovery of a source execution, then the slicers.

:class:`SliceProducer` queues slices on the :class:`~teraslice_k8s.runtime.scheduler.Scheduler`:
first, for a recovery, the source execution's unfinished slices (re-run before anything new),
then what the slicers make, keeping the queue at most ``max_queue_length`` deep (round-robin
over the slicers) and pausing while the state writer is far behind. When the slicers are
exhausted it marks the scheduler's ``slicers_done``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from teraslice_k8s.runtime.analytics import ExecutionAnalytics
from teraslice_k8s.runtime.controller_events import ControllerEvents, first_of
from teraslice_k8s.runtime.operations.base import Slicer
from teraslice_k8s.runtime.scheduler import Scheduler
from teraslice_k8s.runtime.slices import Slice
from teraslice_k8s.runtime.state_writer import StateWriter
from teraslice_k8s.store.base import Page, SliceFilter, Store

#: Recovery types that end the execution once the recovered slices are done.
CLEANUP_TYPES = frozenset({"errors", "pending", "all"})
#: Persistent slicers that return None are polled again after this many seconds.
PERSISTENT_POLL = 0.1
RECOVERY_BATCH = 5000


class SliceProducer:
    def __init__(
        self,
        execution: Mapping[str, Any],
        store: Store,
        scheduler: Scheduler,
        analytics: ExecutionAnalytics,
        *,
        events: ControllerEvents,
        writer: StateWriter,
    ) -> None:
        self.ex = execution
        self.ex_id = str(execution["ex_id"])
        self.lifecycle = str(execution.get("lifecycle", "once"))
        self.store = store
        self.scheduler = scheduler
        self.analytics = analytics
        self.events = events
        self.writer = writer
        self.slicers: list[Slicer] = []

    def _max_queue(self) -> int:
        workers = max(self.scheduler.online_workers, 1)
        return sum(s.max_queue_length(workers) for s in self.slicers) or 1

    async def run(self, first_order: dict[int, int]) -> None:
        """Slice until every slicer is exhausted (persistent slicers never are); ``first_order``
        is each slicer's next ``slicer_order`` (after a recovery's newest slice)."""
        active = dict(enumerate(self.slicers))
        order = dict(first_order)
        persistent = self.lifecycle == "persistent"
        space_event = self.events.space
        while active:
            while self.scheduler.paused or self.scheduler.queued >= self._max_queue():
                space_event.clear()
                await space_event.wait()
            await self.writer.wait_room()
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
            self.events.kick.set()
            if persistent and not produced:
                await asyncio.sleep(PERSISTENT_POLL)
            else:
                await asyncio.sleep(0)
        self.scheduler.slicers_done = True
        self.analytics.mark_queuing_complete()
        if self.scheduler.finished:
            self.events.done.set()

    async def recover(self, stopped: Callable[[], bool]) -> tuple[bool, list[dict[str, Any]], dict[int, int]]:
        """Re-run the source execution's unfinished slices; returns (end_after, recovery data,
        next slicer_order per slicer). ``stopped()`` is true once the controller must stop
        waiting for them (a failure or shutdown)."""
        source = str(self.ex["recovered_execution"])
        kind = self.ex.get("recovered_slice_type")
        states = {"errors": ("error",), "pending": ("pending",)}.get(str(kind), ("pending", "start", "error"))
        seen: set[str] = set()
        events = self.events
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
            events.recovery_drained.clear()
            self.scheduler.add_slices(batch, write=False)
            events.kick.set()
            # A shutdown (stop) must not wait for slices no worker may ever finish.
            await first_of(events.recovery_drained, events.done)
            if stopped() or events.done.is_set():
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
