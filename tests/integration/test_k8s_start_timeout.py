"""Executions whose pods cannot start end ``failed`` after ``slicer_timeout`` (issue 16 item 4).

The real allocator, lifecycle and SqliteStore over the Kubernetes backend on the emulator. The
tests play the scheduler and kubelet (they inject pods with the conditions Kubernetes reports)
and hold the clock: the lifecycle's ``now`` is a :class:`Clock` the test moves past the deadline,
so nothing sleeps. Most tests hand the backend's events to ``lifecycle.handle`` and call
``lifecycle.pending.check()`` themselves; one runs the lifecycle thread to prove the hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import EX_ID, JOB_ID, NAMESPACE, Events, make_execution
from teraslice_k8s.backend.base import BackendEvent, EventKind
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore

JOB_NAME = "ts-exc-example-data-generator-job-7ba9afb0-417a"
SERVICE_NAME = f"svc-{JOB_NAME}"
DEPLOYMENT_NAME = "ts-wkr-example-data-generator-job-7ba9afb0-417a"
CONTROLLER_POD = f"{JOB_NAME}-x7k2p"
WORKER_PODS = [f"{DEPLOYMENT_NAME}-5d8f9c-abcde", f"{DEPLOYMENT_NAME}-5d8f9c-fghij"]
#: Short, as the issue asks; the clock is the test's, so the value only sets the arithmetic.
SLICER_TIMEOUT = timedelta(seconds=30)
NODE_SELECTOR = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
CPU = "0/1 nodes are available: 1 Insufficient cpu."
LIFECYCLE_LOG = "teraslice_k8s.master.lifecycle"
#: Bound on waits for the lifecycle thread (a bound, not a sleep).
WAIT = 10.0


class Clock:
    """The lifecycle's ``now``: real time plus what the test added."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def unschedulable(message: str) -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    return {"phase": "Pending", "conditions": [condition]}


RUNNING = {"phase": "Running", "containerStatuses": [{"name": "c", "state": {"running": {}}}]}


def pod(name: str, component: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "teraslice",
                "app.kubernetes.io/instance": "ts-dev1",
                "app.kubernetes.io/component": component,
                "teraslice.terascope.io/exId": EX_ID,
                "teraslice.terascope.io/jobId": JOB_ID,
            },
        },
        "spec": {"containers": [{"name": "c", "image": "teraslice:k8sdev"}]},
        "status": status,
    }


def objects_left(emulator: EmulatorThread) -> list[tuple[str, str]]:
    """The execution's Job, Service and Deployment still stored (pods are the GC's, which the
    emulator does not run)."""
    kinds = ("batch/v1/jobs", "v1/services", "apps/v1/deployments")
    return sorted((res, name) for (res, _, name) in emulator.objects() if res in kinds)


class Harness:
    """Store, allocator, lifecycle and an observing backend for one execution."""

    def __init__(
        self,
        store: SqliteStore,
        backend: KubernetesBackend,
        events: Events,
        emulator: EmulatorThread,
        config: SysConfig,
    ) -> None:
        self.store, self.backend, self.events, self.emulator = store, backend, events, emulator
        self.clock = Clock()
        self.settings = MasterSettings(slicer_timeout_ms=int(SLICER_TIMEOUT.total_seconds() * 1000))
        self.allocator = Allocator(store, backend)
        self.lifecycle = Lifecycle(store, backend, self.allocator, self.settings, now=self.clock)
        execution = make_execution(config)
        store.create_job({k: v for k, v in execution.items() if k not in ("ex_id", "_status")})
        store.create_execution({**execution, "_status": "pending"})

    def allocate(self) -> None:
        self.allocator.allocate(EX_ID)
        assert self.status() == "initializing"

    def apply_pod(self, name: str, component: str, status: dict[str, Any]) -> BackendEvent:
        """Inject a pod and hand the PENDING event it causes to the lifecycle."""
        self.emulator.apply("v1/pods", NAMESPACE, pod(name, component, status))
        event = self.events.next()
        assert event.kind is EventKind.PENDING
        self.lifecycle.handle(event)
        return event

    def record(self) -> dict[str, Any]:
        return self.store.get_execution(EX_ID)

    def status(self) -> str:
        return str(self.record()["_status"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "state.sqlite", synchronous="NORMAL")
    yield db
    db.close()


@pytest.fixture
def make_harness(
    make_backend: Callable[..., KubernetesBackend],
    store: SqliteStore,
    events: Events,
    emulator: EmulatorThread,
    config: SysConfig,
) -> Iterator[Callable[[bool], Harness]]:
    made: list[Harness] = []

    def make(threaded: bool) -> Harness:
        """``threaded``: the backend's events go to the lifecycle thread, not to ``events``."""
        backend = make_backend()
        h = Harness(store, backend, events, emulator, config)
        backend.start(h.lifecycle.on_event if threaded else events)
        made.append(h)
        return h

    yield make
    for h in made:
        h.lifecycle.close()


@pytest.fixture
def harness(make_harness: Callable[[bool], Harness]) -> Harness:
    return make_harness(False)


def failure_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LIFECYCLE_LOG]


def test_unschedulable_controller_fails_after_slicer_timeout_and_leaves_nothing(
    harness: Harness, emulator: EmulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    harness.allocate()
    assert harness.lifecycle.pending.check() == []  # the first look: timed from allocation
    harness.apply_pod(CONTROLLER_POD, "execution_controller", unschedulable(NODE_SELECTOR))
    reason = f"pod {CONTROLLER_POD}: Unschedulable: {NODE_SELECTOR}"
    assert (harness.status(), harness.record()["_pendingReason"]) == ("initializing", reason)

    harness.clock.advance(SLICER_TIMEOUT - timedelta(seconds=2))
    assert harness.lifecycle.pending.check() == []
    assert harness.status() == "initializing"
    assert len(objects_left(emulator)) == 3

    harness.clock.advance(timedelta(seconds=3))
    with caplog.at_level(logging.INFO, logger=LIFECYCLE_LOG):
        assert harness.lifecycle.pending.check() == [EX_ID]
    expected = (
        f"the execution controller of {EX_ID} was not running 30s after allocation (slicer_timeout): {reason}"
    )
    record = harness.record()
    assert (record["_status"], record["_failureReason"], record["_has_errors"]) == ("failed", expected, True)
    assert objects_left(emulator) == []
    assert failure_log(caplog) == [(logging.WARNING, f"execution {EX_ID} failed: {expected}")]
    assert harness.lifecycle.pending.check() == []  # failed once, not again


def test_unschedulable_workers_fail_the_execution_when_none_ever_ran(
    harness: Harness, emulator: EmulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    harness.allocate()
    harness.emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", RUNNING))
    harness.store.set_status(EX_ID, "running")  # what the controller writes when it starts
    for name in WORKER_PODS:
        harness.apply_pod(name, "worker", unschedulable(CPU))
    first = f"pod {WORKER_PODS[0]}: Unschedulable: {CPU}"
    assert harness.record()["_pendingReason"] == first

    harness.clock.advance(SLICER_TIMEOUT + timedelta(seconds=1))
    with caplog.at_level(logging.INFO, logger=LIFECYCLE_LOG):
        assert harness.lifecycle.pending.check() == [EX_ID]
    expected = f"no worker of execution {EX_ID} was running 30s after allocation (slicer_timeout): {first}"
    assert (harness.status(), harness.record()["_failureReason"]) == ("failed", expected)
    assert objects_left(emulator) == []
    assert failure_log(caplog) == [(logging.WARNING, f"execution {EX_ID} failed: {expected}")]


def test_pending_reason_names_the_controller_first(harness: Harness) -> None:
    harness.allocate()
    worker = f"pod {WORKER_PODS[0]}: Unschedulable: {CPU}"
    controller = f"pod {CONTROLLER_POD}: Unschedulable: {NODE_SELECTOR}"
    harness.apply_pod(WORKER_PODS[0], "worker", unschedulable(CPU))
    assert harness.record()["_pendingReason"] == worker
    harness.apply_pod(CONTROLLER_POD, "execution_controller", unschedulable(NODE_SELECTOR))
    assert harness.record()["_pendingReason"] == controller
    # The worker reporting last does not take over while the controller waits.
    harness.apply_pod(WORKER_PODS[0], "worker", unschedulable("0/2 nodes are available: 2 Insufficient cpu."))
    assert harness.record()["_pendingReason"] == controller
    harness.apply_pod(CONTROLLER_POD, "execution_controller", RUNNING)
    assert harness.record()["_pendingReason"] == (
        f"pod {WORKER_PODS[0]}: Unschedulable: 0/2 nodes are available: 2 Insufficient cpu."
    )
    harness.apply_pod(WORKER_PODS[0], "worker", RUNNING)
    assert harness.record()["_pendingReason"] == ""


def test_a_pod_running_before_the_deadline_is_not_failed(harness: Harness, emulator: EmulatorThread) -> None:
    harness.allocate()
    harness.apply_pod(CONTROLLER_POD, "execution_controller", unschedulable(NODE_SELECTOR))
    harness.apply_pod(WORKER_PODS[0], "worker", unschedulable(NODE_SELECTOR))
    harness.clock.advance(SLICER_TIMEOUT - timedelta(seconds=5))
    harness.apply_pod(CONTROLLER_POD, "execution_controller", RUNNING)  # a node was added
    harness.store.set_status(EX_ID, "running")
    harness.apply_pod(WORKER_PODS[0], "worker", RUNNING)
    assert harness.record()["_pendingReason"] == ""

    harness.clock.advance(SLICER_TIMEOUT * 3)
    assert harness.lifecycle.pending.check() == []
    assert harness.status() == "running"
    assert len(objects_left(emulator)) == 3
    # A worker lost later is the controller's worker_disconnect_timeout, not this watchdog's.
    harness.emulator.remove("v1/pods", NAMESPACE, WORKER_PODS[0])
    harness.apply_pod(WORKER_PODS[1], "worker", unschedulable(CPU))
    harness.clock.advance(SLICER_TIMEOUT)
    assert harness.lifecycle.pending.check() == []
    assert harness.status() == "running"


def test_a_controller_with_no_pod_at_all_fails_too(harness: Harness, emulator: EmulatorThread) -> None:
    # E.g. a ResourceQuota refuses the Job's pod: Kubernetes reports no pod, so no event.
    harness.allocate()
    harness.clock.advance(SLICER_TIMEOUT + timedelta(seconds=1))
    assert harness.lifecycle.pending.check() == [EX_ID]
    assert harness.record()["_failureReason"] == (
        f"execution {EX_ID} was still initializing 30s after allocation (slicer_timeout): "
        "its controller never reported running"
    )
    assert objects_left(emulator) == []


def test_a_restarted_master_keeps_the_deadline_of_allocation(
    harness: Harness,
    make_backend: Callable[..., KubernetesBackend],
    store: SqliteStore,
    emulator: EmulatorThread,
) -> None:
    harness.allocate()
    harness.apply_pod(CONTROLLER_POD, "execution_controller", unschedulable(NODE_SELECTOR))
    harness.clock.advance(SLICER_TIMEOUT / 2)
    # The master restarts half-way: a new backend, lifecycle and watchdog with nothing in memory.
    harness.backend.close()
    events = Events()
    backend = make_backend()
    settings = harness.settings
    lifecycle = Lifecycle(store, backend, Allocator(store, backend), settings, now=harness.clock)
    backend.start(events)
    lifecycle.reconcile()
    # The initial lists report the waiting pod; once the Job cache has it too, with the Job's
    # creation time (the caches sync in any order).
    job = emulator.objects()["batch/v1/jobs", NAMESPACE, JOB_NAME]
    created = datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    while True:
        event = events.next()
        lifecycle.handle(event)
        assert event.start is not None
        if event.start.allocated_at is not None:
            break
    assert event.start.allocated_at == created
    assert lifecycle.pending.check() == []
    harness.clock.advance(SLICER_TIMEOUT / 2 + timedelta(seconds=2))  # 30 s after allocation
    assert lifecycle.pending.check() == [EX_ID]
    assert store.get_execution(EX_ID)["_status"] == "failed"
    assert objects_left(emulator) == []


def test_the_lifecycle_thread_fails_it_once_the_deadline_passed(
    make_harness: Callable[[bool], Harness], emulator: EmulatorThread, caplog: pytest.LogCaptureFixture
) -> None:
    harness = make_harness(True)
    with caplog.at_level(logging.INFO, logger=LIFECYCLE_LOG):
        harness.allocate()
        harness.lifecycle.start()
        emulator.apply("v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", unschedulable(CPU)))
        wait_for(lambda: bool(harness.record().get("_pendingReason")))
        harness.clock.advance(SLICER_TIMEOUT + timedelta(seconds=1))
        # Any event wakes the thread (it would wake by itself within the scan interval).
        emulator.apply(
            "v1/pods", NAMESPACE, pod(CONTROLLER_POD, "execution_controller", unschedulable(NODE_SELECTOR))
        )
        wait_for(lambda: harness.status() == "failed")
        wait_for(lambda: objects_left(emulator) == [])  # removed right after the status write
    reason = harness.record()["_failureReason"]
    assert reason.endswith(f"pod {CONTROLLER_POD}: Unschedulable: {NODE_SELECTOR}")
    assert (logging.WARNING, f"execution {EX_ID} failed: {reason}") in failure_log(caplog)


def wait_for(condition: Callable[[], bool]) -> None:
    """Bounded polling on a condition (not a sleep as synchronisation)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
