"""What the Kubernetes backend reports while an execution's pods wait (``PENDING`` events with a
:class:`~teraslice_k8s.backend.base.StartState`), against the emulator: the tests play the
scheduler and kubelet by injecting pods."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import EX_ID, JOB_ID, NAMESPACE, Events
from teraslice_k8s.backend.base import BackendEvent, EventKind, PodWait, StartState
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import worker_execution
from teraslice_k8s.models.config import SysConfig

JOB_NAME = "ts-exc-example-data-generator-job-7ba9afb0-417a"
CONTROLLER = f"{JOB_NAME}-x7k2p"
WORKER = "ts-wkr-example-data-generator-job-7ba9afb0-417a-5d8f9c-abcde"
MESSAGE = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": MESSAGE}
    ],
}
RUNNING = {"phase": "Running"}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    return {"phase": "Pending", "containerStatuses": [{"name": "c", "state": state}]}


def pod(name: str, component: str, status: dict[str, Any]) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "teraslice",
        "app.kubernetes.io/instance": "ts-dev1",
        "app.kubernetes.io/component": component,
        "teraslice.terascope.io/exId": EX_ID,
        "teraslice.terascope.io/jobId": JOB_ID,
    }
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": []}, "status": status}


@pytest.fixture
def allocated_at(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    events: Events,
) -> datetime:
    """A started backend observing one allocated execution; returns its Job's creation time."""
    backend = make_backend()
    backend.start(events)
    backend.allocate_controller(execution)
    backend.allocate_workers(worker_execution(execution, config))
    job = emulator.objects()["batch/v1/jobs", NAMESPACE, JOB_NAME]
    return datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def apply(emulator: EmulatorThread, name: str, component: str, status: dict[str, Any]) -> None:
    emulator.apply("v1/pods", NAMESPACE, pod(name, component, status))


def test_a_normal_start_reports_nothing(
    allocated_at: datetime, emulator: EmulatorThread, events: Events
) -> None:
    apply(emulator, CONTROLLER, "execution_controller", waiting("ContainerCreating"))
    apply(emulator, WORKER, "worker", {"phase": "Pending"})
    apply(emulator, CONTROLLER, "execution_controller", RUNNING)
    apply(emulator, WORKER, "worker", RUNNING)
    # A marker: a Job condition is reported after the pods (one watch per kind, in order) ...
    emulator.apply(
        "batch/v1/jobs",
        NAMESPACE,
        {"metadata": {"name": JOB_NAME}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
    )
    # ... so the pods' changes were all seen by then; none meant a PENDING event.
    assert events.next() == BackendEvent(EX_ID, EventKind.CONTROLLER_SUCCEEDED, "")
    assert events.pending() == []


def test_waiting_pods_are_listed_controller_first_until_they_run(
    allocated_at: datetime, emulator: EmulatorThread, events: Events
) -> None:
    worker_wait = PodWait("worker", WORKER, f"pod {WORKER}: Unschedulable: {MESSAGE}")
    controller_wait = PodWait(
        "execution_controller", CONTROLLER, f"pod {CONTROLLER}: Unschedulable: {MESSAGE}"
    )
    apply(emulator, WORKER, "worker", UNSCHEDULABLE)
    apply(emulator, CONTROLLER, "execution_controller", UNSCHEDULABLE)
    apply(emulator, CONTROLLER, "execution_controller", RUNNING)
    apply(emulator, WORKER, "worker", RUNNING)
    apply(emulator, WORKER, "worker", {"phase": "Running", "podIP": "10.0.0.9"})  # no longer reported
    states = [StartState((worker_wait,), allocated_at=allocated_at)]
    states.append(StartState((controller_wait, worker_wait), allocated_at=allocated_at))
    states.append(StartState((worker_wait,), controller_running=True, allocated_at=allocated_at))
    states.append(StartState((), controller_running=True, workers_running=1, allocated_at=allocated_at))
    reasons = [worker_wait.reason, controller_wait.reason, worker_wait.reason, ""]
    expected = [
        BackendEvent(EX_ID, EventKind.PENDING, r, start=s) for r, s in zip(reasons, states, strict=True)
    ]
    assert [events.next() for _ in expected] == expected
    apply(emulator, CONTROLLER, "execution_controller", UNSCHEDULABLE)  # marker: waits again
    assert events.next().start == StartState((controller_wait,), workers_running=1, allocated_at=allocated_at)


def test_a_container_that_cannot_be_created_is_a_wait_for_workers(
    allocated_at: datetime, emulator: EmulatorThread, events: Events
) -> None:
    # Fatal for a controller (fails at once), but a worker's Deployment might recover: a wait.
    message = 'secret "creds" not found'
    apply(emulator, WORKER, "worker", waiting("CreateContainerConfigError", message))
    reason = f"pod {WORKER}: CreateContainerConfigError: {message}"
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.PENDING,
        reason,
        start=StartState((PodWait("worker", WORKER, reason),), allocated_at=allocated_at),
    )
    emulator.remove("v1/pods", NAMESPACE, WORKER)  # the Deployment replaced it
    assert events.next() == BackendEvent(
        EX_ID, EventKind.PENDING, "", start=StartState((), allocated_at=allocated_at)
    )


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_image_pull_errors_of_workers_fail_at_once_not_after_the_timeout(
    reason: str, allocated_at: datetime, emulator: EmulatorThread, events: Events
) -> None:
    apply(emulator, WORKER, "worker", waiting(reason, 'pull "teraslice:nope": not found'))
    assert events.next() == BackendEvent(
        EX_ID, EventKind.CONTROLLER_FAILED, f'pod {WORKER}: {reason}: pull "teraslice:nope": not found'
    )
    assert events.pending() == []  # not also a wait
