"""The seam between the master and whatever runs execution processes.

Implementations: :mod:`teraslice_k8s.kubernetes.backend` (a Job + Service + worker Deployment
per execution) and :mod:`teraslice_k8s.backend.local` (local processes, the embedded default).
The master owns policy (statuses, what to reconcile); a backend only creates, observes and
removes processes, and reports what it observes through :class:`BackendEvent`s.

Start sequence driven by the master (Teraslice's allocator):
``set_status(scheduling)`` -> ``allocate_controller(ex)`` -> ``set_status(initializing,
{slicer_hostname, slicer_port})`` -> ``allocate_workers(ex_with_those_fields)``.
Any exception there -> the master sets ``failed`` and calls ``stop_execution(ex_id)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from teraslice_k8s.errors import TerasliceError
from teraslice_k8s.models.job_fields import SLICER_PORT

ScaleAction = Literal["add", "remove", "set"]


class BackendError(TerasliceError):
    """The backend could not do what was asked; ``str()`` is safe to show to users."""


def check_worker_count(count: int) -> None:
    """Refuse a negative worker count (checked before any work, so nothing is called)."""
    if count < 0:
        raise BackendError(f"the worker count must not be negative, got {count}")


def new_worker_total(ex_id: str, current: int, action: ScaleAction, count: int) -> int:
    """The worker count after ``action`` (add/remove/set ``count``) on ``current`` workers.

    Every backend scales through this one rule: a negative ``count`` or a total below 0 is
    refused with a :class:`BackendError` naming both numbers (Teraslice lets ``remove`` drive
    the count negative and fails later in the API server).
    """
    check_worker_count(count)
    total = {"add": current + count, "remove": current - count, "set": count}[action]
    if total < 0:
        raise BackendError(
            f"cannot remove {count} workers from execution {ex_id}: it has {current}, "
            "and the worker count cannot go below 0"
        )
    return total


@dataclass(frozen=True, slots=True)
class ControllerAddress:
    """Where workers and the master reach an execution controller."""

    hostname: str
    port: int = SLICER_PORT


class EventKind(StrEnum):
    #: The controller process ended without error (its Job completed / exit code 0).
    CONTROLLER_SUCCEEDED = "controller_succeeded"
    #: The controller process failed, was evicted, or cannot start (image pull error...).
    CONTROLLER_FAILED = "controller_failed"
    #: What the backend sees of an execution's processes while some wait (unschedulable...):
    #: ``start`` holds the snapshot, ``reason`` the first waiting pod's reason ("" once none
    #: waits). Sent when the snapshot changes while something waits, and once when it clears.
    PENDING = "pending"
    #: Every process of the execution is gone.
    GONE = "gone"


#: The role of an execution's process, as :class:`PodWait` names it.
Role = Literal["execution_controller", "worker"]


@dataclass(frozen=True, slots=True)
class PodWait:
    """One process (pod) of an execution that is waiting to run, and why in the backend's words
    (``'pod <name>: Unschedulable: <message>'``)."""

    role: Role
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class StartState:
    """An observation of an execution's processes, sent with ``PENDING`` events.

    ``waiting`` lists controller pods first, then workers, each by name. ``allocated_at`` is
    when the backend created the execution's controller (``None`` if it does not know), so a
    master that restarted can still count from allocation.
    """

    waiting: tuple[PodWait, ...] = ()
    controller_running: bool = False
    workers_running: int = 0
    allocated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BackendEvent:
    ex_id: str
    kind: EventKind
    reason: str = ""
    #: With ``PENDING`` events of backends that observe start-up in detail (Kubernetes).
    start: StartState | None = None


EventListener = Callable[[BackendEvent], None]


class Backend(Protocol):
    """What the master needs from a cluster manager."""

    #: Reported as ``clustering_type`` by ``GET /`` (``kubernetesV2``, ``kubernetes``, ``local``).
    clustering_type: str
    #: True when executions keep running after the master stops (Kubernetes); False when
    #: ``close()`` ends them (local processes), so the master records how they ended.
    executions_survive_master: bool

    def start(self, listener: EventListener) -> None:
        """Begin observing (watch / process monitor); events go to ``listener`` from any thread."""
        ...

    def allocate_controller(self, execution: Mapping[str, Any]) -> ControllerAddress: ...

    def allocate_workers(self, execution: Mapping[str, Any]) -> None: ...

    def stop_execution(self, ex_id: str, *, force: bool = False) -> None:
        """Remove the execution's processes; idempotent (an already-gone execution is fine)."""
        ...

    def scale_workers(self, ex_id: str, action: ScaleAction, count: int) -> int:
        """Change the worker count; returns the new total (never below 0)."""
        ...

    def execution_ids(self) -> set[str]:
        """Ex ids that still have processes/objects (for stop completion and reconciliation),
        counting processes still exiting and, on Kubernetes, objects being deleted: the master
        marks a ``stopping`` execution ``stopped`` only once its ex_id is not listed."""
        ...

    def cluster_state(self) -> dict[str, Any]:
        """Teraslice's ``GET /v1/cluster/state`` object (node id -> node)."""
        ...

    def call_controller(
        self,
        execution: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        """Send ``method`` ``path`` (query ``params``) to the execution's controller HTTP
        interface by a route the backend knows, and return the JSON object it answered.

        Used by the master when ``slicer_hostname:slicer_port`` cannot be connected to directly
        (a master outside the cluster cannot resolve the Service name). ``method`` is ``GET`` or
        ``POST``; a ``POST`` is delivered at most once. ``timeout`` bounds the call, in seconds.
        Raises :class:`BackendError` on any failure (unreachable, non-2xx, not a JSON object).
        """
        ...

    def close(self) -> None: ...


class StateVersioned(Protocol):
    """Optional for a :class:`Backend`: say, cheaply, whether :meth:`Backend.cluster_state` changed.

    ``state_version()`` returns a value that differs whenever ``cluster_state()`` would answer
    differently (a process joined or left, ...); the API keys its rendered ``/cluster/state``
    by it (found with ``getattr``), so a change shows on the next request. Without it a
    rendered state is reused for at most ``CLUSTER_STATE_TTL``. Implemented by the local
    backend (read live from its processes); a Kubernetes backend can return its pod
    ``ObjectCache.generation``.
    """

    def state_version(self) -> Hashable: ...
