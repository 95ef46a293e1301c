"""What a changed pod or Job of an execution means, in the Kubernetes backend's words.

Pure functions over API objects (dicts): :func:`observe` turns one pod or Job into the event
the master acts on (a controller that failed or cannot start, a Job that completed);
:func:`start_state` summarises an execution's pods while some of them wait (unschedulable...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from teraslice_k8s.backend.base import EventKind, PodWait, StartState
from teraslice_k8s.kubernetes.api import Kind
from teraslice_k8s.kubernetes.names import COMPONENT_LABEL, EX_ID_LABEL, Component

CONTROLLER: Component = "execution_controller"
WORKER: Component = "worker"

#: Container waiting reasons that will not resolve by themselves: the execution has failed.
FATAL_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
#: Of those, the ones that are fatal for worker pods too (the Deployment cannot fix them either).
FATAL_WORKER_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})

#: Container waiting reasons of every normal start: a pod showing only these is not reported.
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


def start_state(
    ex_id: str, pods: Iterable[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]]
) -> StartState:
    """What ``pods`` and ``jobs`` (a cache's items) show of one execution's start: which pods
    wait and why (controller first, then by name), what runs, when its controller Job was made."""
    waiting: list[PodWait] = []
    controller_running, workers_running = False, 0
    for pod in pods:
        labels = labels_of(pod)
        role = labels.get(COMPONENT_LABEL)
        if labels.get(EX_ID_LABEL) != ex_id or role not in (CONTROLLER, WORKER):
            continue
        if pod["metadata"].get("deletionTimestamp"):
            continue  # on its way out: neither waiting nor running
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Running":
            controller_running = controller_running or role == CONTROLLER
            workers_running += role == WORKER
        elif phase in (None, "Pending"):
            reason = waiting_reason(pod)
            if reason:
                waiting.append(PodWait(CONTROLLER if role == CONTROLLER else WORKER, _name(pod), reason))
    waiting.sort(key=lambda w: (w.role != CONTROLLER, w.name))
    allocated_at = None
    for job in jobs:
        if labels_of(job).get(EX_ID_LABEL) == ex_id:
            allocated_at = _timestamp(job["metadata"].get("creationTimestamp"))
    return StartState(tuple(waiting), controller_running, workers_running, allocated_at)


def observe(kind: Kind, obj: Mapping[str, Any]) -> tuple[EventKind, str] | None:
    """The event a changed pod or Job means for its execution (``None``: nothing to report)."""
    name = obj.get("metadata", {}).get("name", "?")
    status = obj.get("status") or {}
    component = labels_of(obj).get(COMPONENT_LABEL)
    if kind is Kind.JOB:
        for condition in status.get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
                return EventKind.CONTROLLER_SUCCEEDED, ""
            if condition.get("type") in ("Failed", "FailureTarget"):
                return EventKind.CONTROLLER_FAILED, _reason(
                    f"job {name}", condition.get("reason") or "Failed", condition.get("message")
                )
        if int(status.get("succeeded") or 0) > 0:
            return EventKind.CONTROLLER_SUCCEEDED, ""
        return None
    if kind is not Kind.POD:
        return None
    controller = component == CONTROLLER
    phase = status.get("phase")
    if controller and phase == "Succeeded":
        # The Job's one pod exited 0, so the Job completes too; the kubelet reports this before
        # the Job controller does (long before, when that controller is catching up after an
        # API server outage), and the master's clean-up need not wait for it.
        return EventKind.CONTROLLER_SUCCEEDED, ""
    if controller and phase == "Failed":
        reason = status.get("reason") or "Failed"
        message = status.get("message") or _terminated_detail(status)
        return EventKind.CONTROLLER_FAILED, _reason(f"pod {name}", reason, message)
    fatal = FATAL_WAITING_REASONS if controller else FATAL_WORKER_REASONS
    for container in _container_statuses(status):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in fatal:
            return EventKind.CONTROLLER_FAILED, _reason(
                f"pod {name}", waiting["reason"], waiting.get("message")
            )
    return None


def waiting_reason(pod: Mapping[str, Any]) -> str:
    """Why a ``Pending`` pod waits, if it is worth reporting ("" for a pod that is merely
    starting): Kubernetes found no node for it (``Unschedulable``), or a container waits for
    a reason other than the normal start-up ones (and not fatal: :func:`observe` reports those).
    """
    name = _name(pod)
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return _reason(f"pod {name}", "Unschedulable", condition.get("message"))
    fatal = (
        FATAL_WAITING_REASONS if labels_of(pod).get(COMPONENT_LABEL) == CONTROLLER else FATAL_WORKER_REASONS
    )
    for container in _container_statuses(status):
        waiting = (container.get("state") or {}).get("waiting") or {}
        why = waiting.get("reason")
        if why and why not in STARTING_REASONS and why not in fatal:
            return _reason(f"pod {name}", why, waiting.get("message"))
    return ""


def _reason(subject: str, reason: str, message: Any) -> str:
    return f"{subject}: {reason}: {message}" if message else f"{subject}: {reason}"


def _terminated_detail(status: Mapping[str, Any]) -> str:
    for container in _container_statuses(status):
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            detail = f"container {container.get('name')} exited with code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                detail += f" ({terminated['reason']})"
            return detail
    return ""


def _container_statuses(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API server (``2024-05-01T10:00:00Z``), else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
