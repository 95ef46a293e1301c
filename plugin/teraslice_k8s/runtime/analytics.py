"""ExecutionAnalytics (§4.8): the controller's counters, served by ``/analytics`` and saved as
``_slicer_stats``. ``records`` (records read by the reader) is an extension key."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from teraslice_k8s.runtime.scheduler import Scheduler
from teraslice_k8s.store.timestamps import utc_now


class ExecutionAnalytics:
    def __init__(self, scheduler: Scheduler, *, slicers: int) -> None:
        self.scheduler = scheduler
        self.slicers = slicers
        self.subslices = 0
        self.slice_range_expansion = 0
        self.subslice_by_key = 0
        self.started: str | None = None
        self.queuing_complete: str | None = None
        self._t0: float | None = None
        self._t1: float | None = None

    def mark_started(self) -> None:
        self.started = utc_now()
        self._t0 = time.monotonic()

    def mark_queuing_complete(self) -> None:
        self.queuing_complete = utc_now()

    def mark_finished(self) -> None:
        self._t1 = time.monotonic()

    @property
    def job_duration(self) -> int:
        if self._t0 is None:
            return 0
        end = self._t1 if self._t1 is not None else time.monotonic()
        return max(1, round(end - self._t0))

    def stats(self) -> dict[str, Any]:
        s = self.scheduler
        c = s.counters
        out: dict[str, Any] = {
            "workers_available": s.available_workers,
            "workers_active": s.active_workers,
            "workers_joined": c.workers_joined,
            "workers_reconnected": c.workers_reconnected,
            "workers_disconnected": c.workers_disconnected,
            "job_duration": self.job_duration,
            "failed": c.failed,
            "subslices": self.subslices,
            "queued": s.queued,
            "slice_range_expansion": self.slice_range_expansion,
            "processed": c.processed,
            "slicers": self.slicers,
            "subslice_by_key": self.subslice_by_key,
            "started": self.started,
            "records": c.records,
        }
        if self.queuing_complete:
            out["queuing_complete"] = self.queuing_complete
        return out

    def controller_stats(self, execution: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /analytics``: Teraslice's ControllerStats object."""
        return {
            "ex_id": execution["ex_id"],
            "job_id": execution["job_id"],
            "name": execution.get("name", ""),
            **self.stats(),
        }
