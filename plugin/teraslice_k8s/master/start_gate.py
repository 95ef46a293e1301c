"""Whether a job may get a new execution now (``_start``, ``_recover``): Teraslice's refusals,
and the wait for a stop's clean-up.

Contract of :meth:`StartGate.check`: returns the job record when it may start; raises
:class:`~teraslice_k8s.master.errors.ApiError` 410 for a deleted job and 409 while one of its
executions runs or objects of it are left. An execution that is only ``stopping``, or objects
the master itself is removing, are waited for (bounded by ``shutdown_timeout``, logged) instead of
refused at once, so a ``_start`` right after a ``_stop`` returns succeeds; leftovers nobody removes
are refused at once, as Teraslice does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from teraslice_k8s.backend.base import Backend
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.execution import LIVING_STATUSES, ExStatus
from teraslice_k8s.store.base import ExFilter, Page, Record, RecordNotFound, Store

log = logging.getLogger("teraslice_k8s.master.service")


class StartGate:
    """The start checks of one master (thread-safe: it only reads the store and the backend)."""

    def __init__(
        self, store: Store, backend: Backend, lifecycle: Lifecycle, settings: Callable[[], MasterSettings]
    ) -> None:
        self._store = store
        self._backend = backend
        self._lifecycle = lifecycle
        #: Read at each check: the service's settings (which may be replaced while it runs).
        self._current_settings = settings

    @property
    def _settings(self) -> MasterSettings:
        return self._current_settings()

    def living_executions(self, job_id: str) -> list[Record]:
        return self._store.list_executions(
            ExFilter(job_id=job_id, statuses=tuple(sorted(LIVING_STATUSES)), deleted=None),
            Page(size=100, sort="_created:desc"),
        )

    def check(self, job_id: str, action: str) -> Record:
        job = self._store.get_job(job_id)
        if job.get("_deleted"):
            raise ApiError(410, f"Job {job_id} has been deleted and cannot be {action}.")
        waited = self._await_clean_up(job_id, action)
        if self.living_executions(job_id):
            raise ApiError(
                409,
                f"Job {job_id} is currently running, cannot have the same job concurrently running" + waited,
            )
        orphaned = self.orphans(job_id)
        if orphaned:
            raise ApiError(
                409,
                f"There are orphaned resources for job: {job_id}, exId: {', '.join(orphaned)}. "
                "Please wait for Kubernetes to clean up orphaned resources." + waited,
            )
        return job

    def orphans(self, job_id: str) -> list[str]:
        """Ex ids of ``job_id`` that still have processes/objects in the backend."""
        return sorted(ex_id for ex_id in self._backend.execution_ids() if self.job_of(ex_id) == job_id)

    def _await_clean_up(self, job_id: str, action: str) -> str:
        """Wait while the job's only obstacles to a new execution are a stop in progress
        (executions ``stopping``) or processes/objects the master is removing, bounded by
        ``shutdown_timeout`` (the stop's grace period). Returns ``""`` when nothing had to be
        waited for or the clean-up finished, else the text the refusal appends (Teraslice
        answers 409 at once). Leftovers nobody is removing are refused at once."""
        started = time.monotonic()
        deadline = started + self._settings.shutdown_timeout_ms / 1000
        poll = min(self._settings.stop_poll_ms / 1000, 0.1)
        waited = False
        while True:
            living = self.living_executions(job_id)
            if any(ex["_status"] != ExStatus.STOPPING for ex in living):
                return ""  # really running: refused at once
            living_ids = {ex["ex_id"] for ex in living}
            orphans = self.orphans(job_id)
            if any(not self._lifecycle.cleaning_up(ex_id) for ex_id in orphans if ex_id not in living_ids):
                return ""  # leftovers nobody removes: refused at once
            cleaning = sorted(living_ids | set(orphans))
            if not cleaning:
                if waited:
                    log.info(
                        "job %s: waited %.1f s for the clean-up of its stopped execution before it is %s",
                        job_id,
                        time.monotonic() - started,
                        action,
                    )
                return ""
            if time.monotonic() >= deadline:
                log.warning(
                    "job %s cannot be %s: execution(s) %s still being cleaned up after %.0f s",
                    job_id,
                    action,
                    ", ".join(cleaning),
                    self._settings.shutdown_timeout_ms / 1000,
                )
                return (
                    f" (waited {self._settings.shutdown_timeout_ms / 1000:g} s for the clean-up of "
                    f"execution {', '.join(cleaning)})"
                )
            if not waited:
                log.info(
                    "job %s: waiting up to %.0f s for the clean-up of execution(s) %s before it is %s",
                    job_id,
                    deadline - started,
                    ", ".join(cleaning),
                    action,
                )
                waited = True
            self._lifecycle.wait_changed(min(poll, max(deadline - time.monotonic(), 0.0)))

    def job_of(self, ex_id: str) -> str | None:
        try:
            job_id: str = self._store.get_execution(ex_id)["job_id"]
        except RecordNotFound:
            return None
        return job_id
