"""The master's use cases: jobs and executions as Teraslice's API exposes them.

Depends only on the :class:`~teraslice_k8s.store.base.Store` and
:class:`~teraslice_k8s.backend.base.Backend` protocols, the models, a
:data:`~teraslice_k8s.master.validation.JobValidator`, and the master's allocator, lifecycle
and controller client. Every refusal is an :class:`~teraslice_k8s.master.errors.ApiError`
carrying Teraslice's status code and message (api-and-runtime.md §1.4-§1.8); lower-layer
errors (``RecordNotFound``, ``InvalidTransition``, ``ValidationError``) propagate and the app
maps them. Invalid input stores nothing: validation always runs before the first write.

Records: the job record is the (prepared) posted spec + metadata (§2.5); an execution is the
spec overlaid by the validated config + execution metadata (§2.6).
"""

from __future__ import annotations

import logging
import platform
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from teraslice_k8s import TERASLICE_COMPAT_VERSION
from teraslice_k8s.backend.base import Backend, BackendError, ScaleAction, new_worker_total
from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master import records
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.assets import AssetService
from teraslice_k8s.master.controller_client import ControllerClient, ControllerUnavailable
from teraslice_k8s.master.controllers import ControllerStats
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.start_gate import StartGate
from teraslice_k8s.master.validation import JobValidator, SpecPreparer, ValidatedJob, job_spec
from teraslice_k8s.models.execution import (
    TERMINAL_STATUSES,
    ExStatus,
    InvalidTransition,
    is_terminal,
)
from teraslice_k8s.store.base import ExFilter, JobFilter, Page, Record, RecordNotFound, SliceFilter, Store
from teraslice_k8s.store.timestamps import utc_now

log = logging.getLogger(__name__)

#: Node-style values for ``GET /`` (teraslice-cli builds asset bundle names from them).
NODE_VERSION = "v22.12.0"
CLEANUP_TYPES = ("all", "errors", "pending")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")


def _node_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "i386": "ia32", "i686": "ia32"}.get(
        machine, machine
    )


def _with_warnings(body: dict[str, Any], validated: ValidatedJob | None) -> dict[str, Any]:
    if validated is not None and validated.warnings:
        body["warnings"] = validated.warnings
    return body


class MasterService:
    """Thread-safe use cases behind every API route."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        settings: MasterSettings,
        validate: JobValidator,
        *,
        prepare: SpecPreparer | None = None,
        allocator: Allocator | None = None,
        lifecycle: Lifecycle | None = None,
        controllers: ControllerClient | None = None,
        assets: AssetService | None = None,
    ) -> None:
        self.store = store
        #: Asset upload/list/delete (``/assets`` routes, autoload at start); None = no routes.
        self.assets = assets
        self.backend = backend
        self.settings = settings
        self._validate = validate
        self._prepare: SpecPreparer = prepare or dict
        self.allocator = allocator or Allocator(store, backend)
        self.lifecycle = lifecycle or Lifecycle(store, backend, self.allocator, settings)
        # Without an injected client, a controller the master cannot connect to (master outside
        # the cluster) is reached through the backend (Kubernetes: the API server's proxy).
        self.controllers = controllers or ControllerClient(backend=backend)
        self.stats = ControllerStats(store, self.controllers, settings)
        self.start_gate = StartGate(store, backend, self.lifecycle, lambda: self.settings)
        self._generation_lock = threading.Lock()
        self._jobs_generation = 0

    @property
    def jobs_generation(self) -> int:
        """Bumped by every job write of this master (lets the API cache job listings)."""
        return self._jobs_generation

    def _job_written(self) -> None:
        with self._generation_lock:
            self._jobs_generation += 1

    # -- process lifetime -----------------------------------------------------------------

    def start(self) -> None:
        """Autoload assets, start observing the backend, reconcile with it, then start allocating."""
        if self.assets is not None:
            self.assets.start()
        self.backend.start(self.lifecycle.on_event)
        self.lifecycle.reconcile()
        self.lifecycle.start()
        self.allocator.start()

    def close(self) -> None:
        self.allocator.close()
        self.lifecycle.close()
        self.stats.close()
        self.controllers.close()
        ended = set() if self.backend.executions_survive_master else self.backend.execution_ids()
        self.backend.close()
        for ex_id in sorted(ended):
            self._record_ended_with_master(ex_id)
        if self.assets is not None:
            self.assets.close()
        self.store.close()

    def _record_ended_with_master(self, ex_id: str) -> None:
        """Mark an execution the backend ended on close ``terminated`` unless it wrote a final
        status itself (a controller that had not started yet cannot), so the next master does
        not mistake it for one whose processes vanished."""
        try:
            status = self.store.get_execution(ex_id)["_status"]
            if is_terminal(status):
                return
            if status == ExStatus.STOPPING:
                # The backend ended its processes on close: the stop is complete.
                self.store.set_status(ex_id, ExStatus.STOPPED)
                log.info("execution %s: stopping -> stopped (its processes ended with the master)", ex_id)
                return
            self.store.set_status(
                ex_id,
                ExStatus.TERMINATED,
                {
                    "_has_errors": True,
                    "_failureReason": f"execution {ex_id} was ended because the master stopped, "
                    'setting status to "terminated"',
                },
            )
        except (RecordNotFound, InvalidTransition) as err:
            log.info("execution %s: no terminated status recorded on shutdown (%s)", ex_id, err)

    # -- cluster --------------------------------------------------------------------------

    def cluster_info(self) -> dict[str, Any]:
        return {
            "arch": _node_arch(),
            "clustering_type": self.backend.clustering_type,
            "name": self.settings.name,
            "node_version": NODE_VERSION,
            "platform": platform.system().lower(),
            "teraslice_version": TERASLICE_COMPAT_VERSION,
        }

    def cluster_state(self) -> dict[str, Any]:
        return self.backend.cluster_state()

    # -- validation helpers ---------------------------------------------------------------

    def _validated(self, spec: Mapping[str, Any], strict: bool | None = False) -> ValidatedJob:
        """Run the job validator; a rejected job is a 422 listing every field-path problem.
        ``strict``: unknown keys are problems (None: the master's ``strict_job_keys``); a
        stored job being started or recovered is never refused for them (False)."""
        try:
            return self._validate(spec, strict=strict)
        except ValidationError as err:
            raise ApiError(422, err.message, err.lines) from err

    def _create_execution(self, record: Record) -> Record:
        stored = self.store.create_execution(record)
        source = stored.get("recovered_execution")
        recovered = f", recovering {source}" if source else ""
        log.info(
            "job %s (%s): execution %s created, pending%s",
            stored["job_id"],
            stored.get("name", ""),
            stored["ex_id"],
            recovered,
        )
        self.allocator.enqueue(stored["ex_id"])
        return stored

    # -- jobs -----------------------------------------------------------------------------

    def submit_job(self, body: Any, *, start: bool, strict: bool | None = None) -> dict[str, Any]:
        """``POST /jobs``: validate, store the job, and (``start``) create a pending execution.
        ``strict``: unknown keys refuse the job (None: the master's setting)."""
        if not isinstance(body, Mapping) or "operations" not in body:
            raise ApiError(400, "No job was posted")
        if "job_id" in body:
            raise ApiError(422, "Job cannot include a job_id on submit")
        spec = self._prepare(body)
        validated = self._validated(spec, strict)
        job_id = str(uuid.uuid4())
        job = self.store.create_job({**spec, "job_id": job_id, "_context": "job"})
        self._job_written()
        log.info("job %s (%s) registered", job_id, spec.get("name", ""))
        result: dict[str, Any] = {"job_id": job["job_id"]}
        if start:
            ex = self._create_execution(records.new_execution(job_id, spec, validated.config))
            result["ex_id"] = ex["ex_id"]
        return _with_warnings(result, validated)

    def list_jobs(self, flt: JobFilter, page: Page, ex_fields: Sequence[str] | None = None) -> list[Record]:
        jobs = self.store.list_jobs(flt, page)
        if ex_fields is not None:
            self._attach_ex(jobs, ex_fields)
        return jobs

    def _attach_ex(self, jobs: list[Record], fields: Sequence[str]) -> None:
        latest = self.store.latest_executions([job["job_id"] for job in jobs])
        for job in jobs:
            ex = latest.get(job["job_id"])
            if ex is None or ex.get("_deleted"):
                job["ex"] = {}
            else:
                job["ex"] = {f: ex[f] for f in fields if f in ex}

    def get_job(self, job_id: str, ex_fields: Sequence[str] | None = None) -> Record:
        job = self.store.get_job(job_id)
        if ex_fields is not None:
            self._attach_ex([job], ex_fields)
        return job

    def update_job(self, job_id: str, body: Any, strict: bool | None = None) -> Record:
        """``PUT /jobs/:id``: replace the stored spec (fields left out disappear)."""
        if not isinstance(body, Mapping) or not body:
            raise ApiError(400, f"no data was provided to update job {job_id}")
        current = self.store.get_job(job_id)
        if current.get("_deleted"):
            raise ApiError(410, f"Job {job_id} has been deleted and cannot be updated.")
        if "job_id" in body and body["job_id"] != job_id:
            raise ApiError(406, "job.job_id doesn't match request id")
        spec = job_spec(body)
        validated: ValidatedJob | None = None
        # Teraslice skips validation when a job is being deactivated.
        if not (current.get("active") is not False and spec.get("active") is False):
            validated = self._validated(spec, strict)
        record = {**spec, "job_id": job_id, "_context": "job", "_created": current.get("_created")}
        stored = self.store.replace_job(job_id, record)
        self._job_written()
        return _with_warnings(dict(stored), validated)

    def set_active(self, job_id: str, active: bool) -> Record:
        """``_active`` / ``_inactive``: the PUT logic with ``active`` changed."""
        current = self.store.get_job(job_id)
        return self.update_job(job_id, {**job_spec(current), "active": active})

    def delete_job(self, job_id: str) -> Record:
        """``DELETE /jobs/:id``: soft delete the job and its executions."""
        job = self.store.get_job(job_id)
        if self._living_executions(job_id):
            raise ApiError(409, f"Job {job_id} is currently running, cannot delete a running job.")
        if job.get("_deleted"):
            raise ApiError(410, f"Job {job_id} has already been deleted.")
        for ex_id in sorted(self.backend.execution_ids()):
            if self._job_of(ex_id) == job_id:  # orphaned objects of this job
                self.backend.stop_execution(ex_id, force=True)
        executions = self.store.list_executions(
            ExFilter(job_id=job_id, deleted=False), Page(size=10_000, sort="_created:asc")
        )
        now = utc_now()
        for ex in executions:
            if not ex.get("_deleted"):
                self.store.update_execution(ex["ex_id"], {"_deleted": True, "_deleted_on": now})
        record = {**job, "_deleted": True, "_deleted_on": now, "active": False}
        deleted = self.store.replace_job(job_id, record)
        self._job_written()
        return deleted

    def _living_executions(self, job_id: str) -> list[Record]:
        return self.start_gate.living_executions(job_id)

    def _job_of(self, ex_id: str) -> str | None:
        return self.start_gate.job_of(ex_id)

    def _check_startable(self, job_id: str, action: str) -> Record:
        return self.start_gate.check(job_id, action)

    def start_job(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/:id/_start``: a new execution of the stored job."""
        job = self._check_startable(job_id, "started")
        spec = job_spec(job)
        validated = self._validated(spec)
        if validated.config.get("autorecover"):
            source = self.store.latest_execution(job_id)
            if source is not None:
                ex = self._create_execution(
                    records.recovery(job_id, source, {**spec, **validated.config}, "pending")
                )
                return _with_warnings({"job_id": job_id, "ex_id": ex["ex_id"]}, validated)
        ex = self._create_execution(records.new_execution(job_id, spec, validated.config))
        return _with_warnings({"job_id": job_id, "ex_id": ex["ex_id"]}, validated)

    # -- recovery -------------------------------------------------------------------------

    @staticmethod
    def check_cleanup_type(value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if value not in CLEANUP_TYPES:
            raise ApiError(400, "cleanup_type must be empty or set to all, errors, pending")
        return value

    def recover_job(self, job_id: str, cleanup: str | None) -> dict[str, Any]:
        """``POST /jobs/:id/_recover``: recover the latest execution with the current job config."""
        cleanup = self.check_cleanup_type(cleanup)
        job = self._check_startable(job_id, "recovered")
        spec = job_spec(job)
        validated = self._validated(spec)
        source = self.store.latest_execution(job_id)
        if source is None:
            if not validated.config.get("autorecover"):
                raise ApiError(404, f"Job {job_id} is missing an execution to recover from")
            ex = self._create_execution(records.new_execution(job_id, spec, validated.config))
        else:
            ex = self._create_execution(
                records.recovery(job_id, source, {**spec, **validated.config}, cleanup)
            )
        return _with_warnings({"job_id": job_id, "ex_id": ex["ex_id"]}, validated)

    def recover_execution(self, ex_id: str, cleanup: str | None) -> dict[str, Any]:
        """``POST /ex/:id/_recover``: recover this execution with its own config."""
        cleanup = self.check_cleanup_type(cleanup)
        source = self.store.get_execution(ex_id)
        job_id = source["job_id"]
        self._check_startable(job_id, "recovered")
        ex = self._create_execution(records.recovery(job_id, source, {}, cleanup))
        return {"job_id": job_id, "ex_id": ex["ex_id"]}

    # -- executions -----------------------------------------------------------------------

    def latest_execution(self, job_id: str) -> Record:
        """``GET /jobs/:id/ex``; also how ``/jobs/:id/...`` control routes find their execution."""
        self.store.get_job(job_id)
        ex = self.store.latest_execution(job_id)
        if ex is None:
            raise ApiError(404, f"No execution was found for job {job_id}")
        return ex

    def get_execution(self, ex_id: str) -> Record:
        return self.store.get_execution(ex_id)

    def list_executions(self, flt: ExFilter, page: Page) -> list[Record]:
        return self.store.list_executions(flt, page)

    def _active_execution(self, ex_id: str) -> Record:
        ex = self.store.get_execution(ex_id)
        if ex["_status"] in TERMINAL_STATUSES:
            raise ApiError(404, f"no active execution context was found for ex_id: {ex_id}")
        return ex

    def stop(self, ex_id: str, *, force: bool, blocking: bool, timeout_ms: int | None) -> dict[str, Any]:
        """``_stop``: stop flow of the lifecycle; ``blocking`` waits (bounded) for a terminal status."""
        try:
            ex = self.lifecycle.request_stop(ex_id, force=force)
        except BackendError as err:
            raise ApiError(502, f"Could not stop execution {ex_id}: {err}") from err
        if blocking and not is_terminal(ex["_status"]):
            wait_ms = timeout_ms if timeout_ms is not None else 2 * self.settings.shutdown_timeout_ms
            ex = self.lifecycle.wait_terminal(ex_id, wait_ms / 1000)
        status = ex["_status"]
        if force:
            return {"message": f"Force stop complete for exId {ex_id}", "status": status}
        return {"status": status}

    def pause(self, ex_id: str) -> dict[str, Any]:
        ex = self._active_execution(ex_id)
        try:
            self.controllers.pause(ex, self.settings.command_timeout_s)
        except ControllerUnavailable as err:
            raise ApiError(500, f"Execution {ex_id} is not available to pause") from err
        self.store.set_status(ex_id, ExStatus.PAUSED)
        return {"status": "paused"}

    def resume(self, ex_id: str) -> dict[str, Any]:
        ex = self._active_execution(ex_id)
        try:
            self.controllers.resume(ex, self.settings.command_timeout_s)
        except ControllerUnavailable as err:
            raise ApiError(500, f"Execution {ex_id} is not available to resume") from err
        self.store.set_status(ex_id, ExStatus.RUNNING)
        return {"status": "running"}

    def set_log_level(self, ex_id: str, level: str | None) -> dict[str, Any]:
        if level not in LOG_LEVELS:
            raise ApiError(400, f'Invalid log level "{level}", must be one of: {", ".join(LOG_LEVELS)}')
        ex = self._active_execution(ex_id)
        try:
            reply = self.controllers.set_log_level(ex, level, self.settings.command_timeout_s)
        except ControllerUnavailable as err:
            raise ApiError(404, f"Execution {ex_id} is not available") from err
        return {"exId": ex_id, "level": reply.get("level", level)}

    def scale_workers(self, ex_id: str, action: str, count: int) -> dict[str, Any]:
        """``_workers``: ``action`` is ``add``, ``remove`` or ``set`` (``total=``), ``count`` > 0."""
        if action not in ("add", "remove", "set"):
            raise ValueError(action)
        scale = cast(ScaleAction, action)
        ex = self._active_execution(ex_id)
        try:
            if ex["_status"] in (ExStatus.PENDING, ExStatus.SCHEDULING):
                # No worker Deployment yet: change the count the allocator will create.
                total = new_worker_total(ex_id, int(ex.get("workers", 0)), scale, count)
            else:
                total = self.backend.scale_workers(ex_id, scale, count)
        except BackendError as err:
            raise ApiError(409, str(err)) from err
        self.store.update_execution(ex_id, {"workers": total})
        return {"message": f"{count} workers have been {action} for execution: {ex_id}"}

    def errors(self, ex_id: str | None, page: Page) -> list[Record]:
        """Slice state records in ``error`` (one execution, or every execution for ``None``)."""
        if ex_id is not None:
            self.store.get_execution(ex_id)
        return self.store.list_slices(SliceFilter(ex_id=ex_id, states=("error",)), page)

    # -- controllers --------------------------------------------------------------------

    def controller(self, ex_id: str) -> list[dict[str, Any]]:
        return self.stats.one(ex_id)

    def all_controllers(self) -> list[dict[str, Any]]:
        return self.stats.all()

    def cluster_stats(self) -> dict[str, Any]:
        return self.stats.totals()
