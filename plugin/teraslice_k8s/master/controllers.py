"""Statistics of running execution controllers, read from each controller's ``/analytics``.

Teraslice's master asks every connected controller over its socket; here the master calls the
controller's HTTP interface at ``slicer_hostname:slicer_port`` (in parallel, each call bounded
by ``analytics_timeout``). A controller that cannot be reached is left out of the lists and is a
404 for the one-execution form, as an offline controller is in Teraslice.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from teraslice_k8s.master.controller_client import ControllerClient, ControllerUnavailable
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.execution import RUNNING_STATUSES, is_terminal
from teraslice_k8s.store.base import ExFilter, Page, Record, Store

log = logging.getLogger(__name__)

#: Fields of ``GET /cluster/stats`` (sums over live controllers).
STATS_FIELDS = (
    "processed",
    "failed",
    "queued",
    "job_duration",
    "workers_joined",
    "workers_disconnected",
    "workers_reconnected",
)


class ControllerStats:
    """``/cluster/controllers``, ``/ex/:id/controller`` and ``/cluster/stats``. Thread-safe."""

    def __init__(self, store: Store, client: ControllerClient, settings: MasterSettings) -> None:
        self._store = store
        self._client = client
        self._timeout = settings.analytics_timeout_ms / 1000
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ts-analytics")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stats(self, ex: Record) -> dict[str, Any] | None:
        try:
            analytics = self._client.analytics(ex, self._timeout)
        except ControllerUnavailable as err:
            log.debug("no analytics from %s: %s", ex["ex_id"], err)
            return None
        return _identified(analytics, ex)

    def one(self, ex_id: str) -> list[dict[str, Any]]:
        """Stats of one execution's controller (a one-element list, as Teraslice)."""
        ex = self._store.get_execution(ex_id)
        stats = None if is_terminal(ex["_status"]) else self._stats(ex)
        if stats is None:
            raise ApiError(404, f"Could not find active slicer for ex_id: {ex_id}")
        return [stats]

    def all(self) -> list[dict[str, Any]]:
        """Stats of every reachable controller of an execution in a running status, sorted by
        name and start then reversed (Teraslice's order)."""
        running = self._store.list_executions(
            ExFilter(statuses=tuple(sorted(RUNNING_STATUSES))), Page(size=10_000, sort="_created:asc")
        )
        found: list[dict[str, Any]] = []
        answers = self._client.analytics_all(running, self._timeout, self._pool.map)
        for ex, answer in zip(running, answers, strict=True):
            if isinstance(answer, ControllerUnavailable):
                log.debug("no analytics from %s: %s", ex["ex_id"], answer)
                continue
            found.append(_identified(answer, ex))
        found.sort(key=lambda s: (str(s.get("name", "")), str(s.get("started", ""))))
        found.reverse()
        return found

    def totals(self) -> dict[str, Any]:
        """``/cluster/stats``: the counters summed over the live controllers."""
        totals = dict.fromkeys(STATS_FIELDS, 0)
        for stats in self.all():
            for key in STATS_FIELDS:
                value = stats.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    totals[key] += int(value)
        return {"controllers": totals, "slicer": dict(totals)}


def _identified(analytics: dict[str, Any], ex: Record) -> dict[str, Any]:
    """A controller's analytics with the ids and name of its execution (Teraslice's fields)."""
    return {**analytics, "ex_id": ex["ex_id"], "job_id": ex["job_id"], "name": ex.get("name", "")}
