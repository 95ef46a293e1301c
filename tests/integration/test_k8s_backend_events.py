"""Watch-driven backend events and restart reconciliation, against the emulator.

The emulator runs no controllers, so the tests play kubelet and Job controller: they inject
pods and patch statuses, and expect the exact event the master will act on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import EX_ID, JOB_ID, NAMESPACE, Events, make_execution
from support.k8s_real import wait_until
from teraslice_k8s.backend.base import BackendEvent, EventKind, PodWait, StartState
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import worker_execution
from teraslice_k8s.models.config import SysConfig

JOB_NAME = "ts-exc-example-data-generator-job-7ba9afb0-417a"
CONTROLLER_POD = f"{JOB_NAME}-x7k2p"
WORKER_POD = "ts-wkr-example-data-generator-job-7ba9afb0-417a-5d8f9c-abcde"


def labels(component: str, ex_id: str = EX_ID) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "teraslice",
        "app.kubernetes.io/instance": "ts-dev1",
        "app.kubernetes.io/component": component,
        "teraslice.terascope.io/exId": ex_id,
        "teraslice.terascope.io/jobId": JOB_ID,
    }


def pod(name: str, component: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels(component)},
        "spec": {"containers": [{"name": name, "image": "teraslice:k8sdev"}]},
        "status": status,
    }


@pytest.fixture
def running(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    events: Events,
) -> KubernetesBackend:
    """A started backend observing one started execution."""
    backend = make_backend()
    backend.start(events)
    backend.allocate_controller(execution)
    backend.allocate_workers(worker_execution(execution, config))
    return backend


def test_failed_controller_pod_fails_the_execution(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    terminated = {"terminated": {"exitCode": 1, "reason": "Error"}}
    status = {"phase": "Failed", "containerStatuses": [{"name": "exc", "state": terminated}]}
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.CONTROLLER_FAILED,
        f"pod {CONTROLLER_POD}: Failed: container exc exited with code 1 (Error)",
    )


def test_evicted_controller_pod_fails_the_execution(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    status = {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.CONTROLLER_FAILED,
        f"pod {CONTROLLER_POD}: Evicted: The node was low on resource: memory.",
    )


@pytest.mark.parametrize("component", ["execution_controller", "worker"])
def test_image_pull_error_fails_the_execution(
    component: str, running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    name = CONTROLLER_POD if component == "execution_controller" else WORKER_POD
    message = 'failed to pull image "teraslice:nope": not found'
    waiting = {"waiting": {"reason": "ErrImagePull", "message": message}}
    status = {
        "phase": "Pending",
        "hostIP": "10.0.0.1",
        "containerStatuses": [{"name": "c", "state": waiting}],
    }
    emulator.apply("v1/pods", NAMESPACE, pod(name, component, status))
    assert events.next() == BackendEvent(
        EX_ID, EventKind.CONTROLLER_FAILED, f"pod {name}: ErrImagePull: {message}"
    )


def test_crash_looping_controller_fails_but_crash_looping_worker_does_not(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    waiting = {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
    }
    status = {"phase": "Running", "containerStatuses": [{"name": "c", "state": waiting}]}
    emulator.apply("v1/pods", NAMESPACE, pod(WORKER_POD, "worker", status))  # the Deployment retries
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.CONTROLLER_FAILED,
        f"pod {CONTROLLER_POD}: CrashLoopBackOff: back-off 5m0s restarting failed container",
    )
    assert events.pending() == []


def test_unschedulable_pod_says_why_it_is_pending(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    message = "0/3 nodes are available: 3 Insufficient cpu."
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    emulator.apply(
        "v1/pods", NAMESPACE, pod(WORKER_POD, "worker", {"phase": "Pending", "conditions": [condition]})
    )
    reason = f"pod {WORKER_POD}: Unschedulable: {message}"
    created = emulator.objects()["batch/v1/jobs", NAMESPACE, JOB_NAME]["metadata"]["creationTimestamp"]
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.PENDING,
        reason,
        start=StartState(
            waiting=(PodWait("worker", WORKER_POD, reason),),
            allocated_at=datetime.fromisoformat(created.replace("Z", "+00:00")),
        ),
    )


def test_job_complete_means_controller_succeeded_once(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    complete = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    emulator.apply("batch/v1/jobs", NAMESPACE, {"metadata": {"name": JOB_NAME}, "status": complete})
    assert events.next() == BackendEvent(EX_ID, EventKind.CONTROLLER_SUCCEEDED, "")
    emulator.apply("batch/v1/jobs", NAMESPACE, {"metadata": {"name": JOB_NAME}, "status": {"active": 0}})
    running.stop_execution(EX_ID)
    assert events.next() == BackendEvent(EX_ID, EventKind.GONE, "")  # no second SUCCEEDED before it


def test_controller_pod_succeeded_means_controller_succeeded_before_the_job_says_so(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    terminated = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    status = {"phase": "Succeeded", "containerStatuses": [{"name": "c", "state": terminated}]}
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    assert events.next() == BackendEvent(EX_ID, EventKind.CONTROLLER_SUCCEEDED, "")
    # The Job controller's verdict, later, is the same event: not reported twice.
    complete = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    emulator.apply("batch/v1/jobs", NAMESPACE, {"metadata": {"name": JOB_NAME}, "status": complete})
    running.stop_execution(EX_ID)
    emulator.remove("v1/pods", NAMESPACE, CONTROLLER_POD)
    assert events.next() == BackendEvent(EX_ID, EventKind.GONE, "")


def test_job_failed_condition_fails_the_execution(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    condition = {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }
    emulator.apply(
        "batch/v1/jobs", NAMESPACE, {"metadata": {"name": JOB_NAME}, "status": {"conditions": [condition]}}
    )
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.CONTROLLER_FAILED,
        f"job {JOB_NAME}: BackoffLimitExceeded: Job has reached the specified backoff limit",
    )


def test_gone_when_every_object_of_the_execution_is_deleted(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    # The Job's ADDED reaches its cache through the watch: before the pod, so the pod brings one
    # start state (with the Job's allocation time), not a second one when the Job arrives late.
    wait_until(lambda: running.execution_ids() == {EX_ID}, 10, "the Job in the backend's cache")
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    emulator.apply(
        "v1/pods", NAMESPACE, pod(WORKER_POD, "worker", {"phase": "Pending", "conditions": [condition]})
    )
    assert events.next().kind is EventKind.PENDING  # the pod cache has the pod
    # The Job deleted, its Deployment and Service with it (the emulator's garbage collector);
    # the pod, which no owner reference ties to them here, stays.
    running.stop_execution(EX_ID)
    assert [e for e in events.pending() if e.kind is not EventKind.PENDING] == []  # no GONE yet
    assert running.execution_ids() == {EX_ID}
    emulator.remove("v1/pods", NAMESPACE, WORKER_POD)  # what the garbage collector would do
    # The watches of pods, Jobs and Deployments run on their own threads: the pod's deletion
    # may be seen before the Job's and the Deployment's, and then the start state changes
    # first (nothing waits any more: PENDING); GONE comes once the last of them is seen.
    event = events.next()
    while event.kind is EventKind.PENDING:
        event = events.next()
    assert event == BackendEvent(EX_ID, EventKind.GONE, "")
    assert running.execution_ids() == set()


def test_master_pod_and_foreign_objects_make_no_events(
    running: KubernetesBackend, emulator: EmulatorThread, events: Events
) -> None:
    master = {
        "metadata": {
            "name": "teraslice-master-0",
            "labels": {
                "app.kubernetes.io/name": "teraslice",
                "app.kubernetes.io/instance": "ts-dev1",
                "app.kubernetes.io/component": "master",
            },
        },
        "status": {"phase": "Failed"},
    }
    emulator.apply("v1/pods", NAMESPACE, master)
    foreign = pod("other-exc", "execution_controller", {"phase": "Failed"})
    foreign["metadata"]["labels"]["app.kubernetes.io/instance"] = "another-cluster"
    emulator.apply("v1/pods", NAMESPACE, foreign)
    # A marker event proves the two above were processed (events arrive in watch order per kind).
    status = {"phase": "Failed", "reason": "Evicted"}
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    assert events.next() == BackendEvent(EX_ID, EventKind.CONTROLLER_FAILED, f"pod {CONTROLLER_POD}: Evicted")


# ----------------------------------------------------------------------------------- restart


def test_fresh_backend_finds_running_executions(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    config: SysConfig,
    events: Events,
) -> None:
    first = make_backend()
    one = make_execution(config)
    two = make_execution(config, ex_id="22222222-0000-4000-8000-000000000002", job_id="33333333-0000-4000")
    for execution in (one, two):
        first.allocate_controller(execution)
        first.allocate_workers(worker_execution(execution, config))
    first.allocate_controller(
        make_execution(config, ex_id="44444444-0000-4000-8000-000000000004", job_id="4")
    )
    foreign = pod("other", "worker", {"phase": "Running"})
    foreign["metadata"]["labels"].update(
        {"app.kubernetes.io/instance": "another-cluster", "teraslice.terascope.io/exId": "foreign"}
    )
    emulator.apply("v1/pods", NAMESPACE, foreign)

    restarted = make_backend()  # a new master process: nothing in memory
    expected = {EX_ID, "22222222-0000-4000-8000-000000000002", "44444444-0000-4000-8000-000000000004"}
    assert restarted.execution_ids() == expected
    restarted.start(events)
    assert restarted.execution_ids() == expected
    restarted.stop_execution("44444444-0000-4000-8000-000000000004")
    assert events.next() == BackendEvent("44444444-0000-4000-8000-000000000004", EventKind.GONE, "")
    assert restarted.execution_ids() == {EX_ID, "22222222-0000-4000-8000-000000000002"}


def test_failure_that_happened_while_the_master_was_down_is_reported_on_start(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    execution: dict[str, Any],
    events: Events,
) -> None:
    make_backend().allocate_controller(execution)
    status = {"phase": "Failed", "reason": "Evicted", "message": "The node had condition: [DiskPressure]."}
    emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", status))
    make_backend().start(events)
    assert events.next() == BackendEvent(
        EX_ID,
        EventKind.CONTROLLER_FAILED,
        f"pod {CONTROLLER_POD}: Evicted: The node had condition: [DiskPressure].",
    )
