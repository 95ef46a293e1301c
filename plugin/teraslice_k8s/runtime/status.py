"""The execution controller's status writes: ``failing`` and back, and the final status.

:class:`ExecutionStatus` writes through the store's checked ``set_status`` (one write at a
time, one INFO line each) and knows Teraslice's rules for what the controller records:
``failing`` on the first slice failure (persistent jobs go back to ``running`` after a
``probation_window`` with new successes and no new failures), and at the end one of
``completed``/``failed``/``terminated`` with ``_slicer_stats``, ``_has_errors`` and
``_failureReason`` -- or only ``_slicer_stats`` when the execution is being stopped (the master
writes ``stopped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from teraslice_k8s.models.execution import ExStatus, InvalidTransition, is_terminal
from teraslice_k8s.runtime.analytics import ExecutionAnalytics
from teraslice_k8s.runtime.scheduler import Scheduler
from teraslice_k8s.store.base import Record, SliceFilter, Store

#: The controller's parts log as the controller: one ``module`` in the logs for what the
#: execution controller does, as before it was split into modules.
log = logging.getLogger("teraslice_k8s.runtime.execution_controller")


class ExecutionStatus:
    def __init__(
        self,
        execution: Mapping[str, Any],
        store: Store,
        scheduler: Scheduler,
        analytics: ExecutionAnalytics,
        *,
        done: asyncio.Event,
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.ex_id = str(execution["ex_id"])
        self.lifecycle = str(execution.get("lifecycle", "once"))
        self.probation_window = float(execution.get("probation_window", 300_000)) / 1000
        self.store = store
        self.scheduler = scheduler
        self.analytics = analytics
        self._done = done
        self._spawn = spawn
        #: The status this controller last wrote (or read at start-up).
        self.current = ""
        self._failing = False
        self._lock = asyncio.Lock()

    async def set(self, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        """Write ``status`` (and ``fields``); raises the store's InvalidTransition."""
        async with self._lock:
            record = await asyncio.to_thread(self.store.set_status, self.ex_id, status, fields)
            previous, self.current = self.current, status
        _log_status(self.ex_id, previous, status, fields or {})
        return record

    # -- failing --

    def slice_failed(self) -> None:
        """A slice finally failed: the first one (while not already failing) enters ``failing``."""
        if not self._failing:
            self._failing = True
            self._spawn(self._enter_failing())

    async def _enter_failing(self) -> None:
        """First slice failure: ``failing``. Persistent jobs watch one ``probation_window`` at a
        time and go back to ``running`` after a window with successes and no new failure; a
        window with new failures while the stored status is ``running`` (the master resumed a
        paused execution meanwhile) writes ``failing`` again."""
        reason = f"execution {self.ex_id} has encountered a processing error, reason: " + (
            "slice failure watch dog" if self.lifecycle == "persistent" else "slice failure event"
        )
        if self._done.is_set():
            return
        await self._write_failing(reason)
        if self.lifecycle != "persistent":
            return
        counters = self.scheduler.counters
        while not self._done.is_set():
            failed, ok = counters.failed, counters.processed - counters.failed
            await asyncio.sleep(self.probation_window)
            if counters.failed == failed and counters.processed - counters.failed > ok:
                break
            if counters.failed != failed and not self._done.is_set():
                current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
                if current.get("_status") == ExStatus.RUNNING:
                    await self._write_failing(reason)
        current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
        self._failing = False
        # Only undo our own "failing" (the master may have paused or stopped meanwhile).
        if not self._done.is_set() and current.get("_status") == ExStatus.FAILING:
            with contextlib.suppress(InvalidTransition):
                await self.set(ExStatus.RUNNING, {"_slicer_stats": self.analytics.stats()})

    async def _write_failing(self, reason: str) -> None:
        with contextlib.suppress(InvalidTransition):
            await self.set(
                ExStatus.FAILING,
                {"_has_errors": True, "_failureReason": reason, "_slicer_stats": self.analytics.stats()},
            )

    # -- the end --

    async def write_final(self, *, fatal: str | None, shutdown: bool, unfinished: str) -> None:
        """The controller's last write: ``fatal`` (a failure reason) fails the execution,
        ``shutdown`` before the work finished terminates it (``unfinished`` says what was left),
        else the slices' states decide between ``completed`` and ``failed``."""
        current = await asyncio.to_thread(self.store.get_execution, self.ex_id)
        stopping = current.get("_status") in (ExStatus.STOPPING, ExStatus.STOPPED)
        if stopping and (fatal is not None or not self.scheduler.finished):
            # The master writes "stopped" once no process of the execution is left (this one
            # included); writing it here would announce the stop while processes still run.
            log.info(
                "execution %s is %s: the execution controller leaves the final status to the "
                "master and only records its slicer stats%s",
                self.ex_id,
                current.get("_status"),
                f" (not recorded as failed: {first_line(fatal)})" if fatal else "",
            )
            await asyncio.to_thread(
                self.store.update_execution, self.ex_id, {"_slicer_stats": self.analytics.stats()}
            )
            return
        if fatal is not None:
            await self.write_terminal(ExStatus.FAILED, fatal)
            return
        if shutdown and not self.scheduler.finished:
            await self.write_terminal(
                ExStatus.TERMINATED,
                f"execution {self.ex_id} received shutdown before the slicer could complete, "
                f'setting status to "terminated"{unfinished}',
            )
            return
        counts = {}
        for state in ("error", "start", "pending"):
            counts[state] = await asyncio.to_thread(
                self.store.count_slices, SliceFilter(ex_id=self.ex_id, states=(state,))
            )
        parts = []
        if counts["start"]:
            parts.append(f"had {counts['start']} slice(s) stuck in started")
        if counts["pending"]:
            parts.append(f"had {counts['pending']} slice(s) are still pending")
        if counts["error"]:
            parts.append(f"had {counts['error']} slice failure(s)")
        if counts["error"] or counts["start"]:
            await self.write_terminal(
                ExStatus.FAILED, f"execution: {self.ex_id} " + ",".join(parts) + " during processing"
            )
        else:
            await self.write_terminal(ExStatus.COMPLETED, None)

    async def write_terminal(self, status: ExStatus, reason: str | None) -> None:
        fields: dict[str, Any] = {"_slicer_stats": self.analytics.stats()}
        if reason is not None:
            fields["_has_errors"] = True
            fields["_failureReason"] = reason
        try:
            await self.set(status, fields)
        except InvalidTransition as exc:
            # e.g. the master already set a terminal status, or a stop landed; keep the stats.
            level = logging.INFO if exc.current == ExStatus.STOPPING else logging.WARNING
            log.log(level, "execution %s: %s not recorded: %s", self.ex_id, status, exc)
            await asyncio.to_thread(
                self.store.update_execution, self.ex_id, {"_slicer_stats": fields["_slicer_stats"]}
            )


def _log_status(ex_id: str, previous: str, status: str, fields: Mapping[str, Any]) -> None:
    """One INFO line per status this controller writes, with the reason and, when the
    execution ends, what it processed."""
    details = []
    if fields.get("_failureReason"):
        details.append(first_line(str(fields["_failureReason"])))
    stats = fields.get("_slicer_stats") or {}
    if is_terminal(status) and stats:
        details.append(
            f"{stats.get('processed', 0)} slices processed, {stats.get('failed', 0)} failed, "
            f"{stats.get('records', 0)} records"
        )
    suffix = f" ({'; '.join(details)})" if details else ""
    log.info("execution %s: %s -> %s%s", ex_id, previous or "initializing", status, suffix)


def first_line(text: str | None) -> str:
    """The line that says what went wrong: a Python traceback's last line (its first is always
    ``Traceback (most recent call last):``), else the first line."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
