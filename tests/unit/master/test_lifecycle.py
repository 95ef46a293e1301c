"""Allocation, backend events, the stop flow, the reaper and restart reconciliation, driven
synchronously (no threads) on a real SqliteStore and the recording backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from teraslice_k8s.backend.base import BackendError, BackendEvent, EventKind
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import RecordingBackend, job_spec


def make_ex(store: SqliteStore, status: str = "pending", **fields: Any) -> str:
    """Store an execution and walk it to ``status`` through allowed transitions."""
    ex_id = str(uuid.uuid4())
    job_id = str(uuid.uuid4())
    store.create_job({**job_spec(), "job_id": job_id})
    store.create_execution({**job_spec(), "job_id": job_id, "ex_id": ex_id, "_status": "pending", **fields})
    path = {
        "pending": [],
        "scheduling": ["scheduling"],
        "initializing": ["scheduling", "initializing"],
        "running": ["scheduling", "initializing", "running"],
        "stopping": ["scheduling", "initializing", "running", "stopping"],
        "completed": ["scheduling", "initializing", "running", "completed"],
        "failed": ["scheduling", "initializing", "failed"],
    }[status]
    for step in path:
        store.set_status(ex_id, step)
    return ex_id


@pytest.fixture
def allocator(store: SqliteStore, backend: RecordingBackend) -> Allocator:
    return Allocator(store, backend)


@pytest.fixture
def lifecycle(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, settings: MasterSettings
) -> Lifecycle:
    return Lifecycle(store, backend, allocator, settings)


# -- allocation ---------------------------------------------------------------------------------


def test_allocation_sequence(store: SqliteStore, backend: RecordingBackend, allocator: Allocator) -> None:
    ex_id = make_ex(store)
    allocator.allocate(ex_id)
    ex = store.get_execution(ex_id)
    assert ex["_status"] == "initializing"
    assert (ex["slicer_hostname"], ex["slicer_port"]) == (f"svc-{ex_id[:8]}.default", 45680)
    assert backend.names() == ["allocate_controller", "allocate_workers"]
    assert backend.calls[0][2]["_status"] == "pending"
    assert backend.calls[1][2]["slicer_hostname"] == ex["slicer_hostname"]


@pytest.mark.parametrize("step", ["allocate_controller", "allocate_workers"])
def test_allocation_failure_fails_and_cleans_up(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, step: str
) -> None:
    ex_id = make_ex(store)
    backend.fail[step] = BackendError("the configmap teraslice-worker does not exist")
    allocator.allocate(ex_id)
    ex = store.get_execution(ex_id)
    assert ex["_status"] == "failed"
    assert ex["_failureReason"] == (
        f"Failed to provision execution {ex_id}: the configmap teraslice-worker does not exist"
    )
    assert ex["_has_errors"] is True
    assert backend.calls[-1] == ("stop_execution", ex_id, False)


def test_allocation_skips_an_execution_stopped_while_queued(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator
) -> None:
    ex_id = make_ex(store)
    store.set_status(ex_id, "stopping")
    allocator.allocate(ex_id)
    assert backend.calls == []
    assert store.get_execution(ex_id)["_status"] == "stopping"


def test_stop_landing_during_allocation_removes_the_new_objects(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator
) -> None:
    ex_id = make_ex(store)
    original = backend.allocate_controller

    def allocate_then_stop(execution: Any) -> Any:
        address = original(execution)
        store.set_status(ex_id, "stopping")  # the user's stop lands now
        return address

    backend.allocate_controller = allocate_then_stop  # type: ignore[method-assign]
    allocator.allocate(ex_id)
    assert store.get_execution(ex_id)["_status"] == "stopping"
    assert backend.names() == ["allocate_controller", "stop_execution"]


def test_allocator_thread_runs_queued_executions_in_order(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator
) -> None:
    ids = [make_ex(store) for _ in range(3)]
    for ex_id in ids:
        allocator.enqueue(ex_id)
    allocator.start()
    try:
        assert allocator.wait_idle(10)
    finally:
        allocator.close()
    assert [c[1] for c in backend.calls_of("allocate_controller")] == ids


# -- events -------------------------------------------------------------------------------------


def test_controller_failed_marks_failed_with_the_reason(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "running")
    reason = "execution controller pod ts-exc-x: ImagePullBackOff: Back-off pulling image"
    lifecycle.handle(BackendEvent(ex_id, EventKind.CONTROLLER_FAILED, reason))
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex["_failureReason"], ex["_has_errors"]) == ("failed", reason, True)
    assert backend.calls == [("stop_execution", ex_id, False)]


def test_controller_succeeded_after_completed_only_cleans_up(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "completed")
    lifecycle.handle(BackendEvent(ex_id, EventKind.CONTROLLER_SUCCEEDED))
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex.get("_failureReason")) == ("completed", None)
    assert backend.calls == [("stop_execution", ex_id, False)]


def test_controller_exit_while_running_is_a_failure(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "running")
    lifecycle.handle(BackendEvent(ex_id, EventKind.CONTROLLER_SUCCEEDED, "Job ts-exc-x completed"))
    ex = store.get_execution(ex_id)
    assert ex["_status"] == "failed"
    assert (
        ex["_failureReason"]
        == "the execution controller exited while the execution was running: Job ts-exc-x completed"
    )


def test_pending_reason_is_stored_without_failing(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "initializing")
    reason = "0/3 nodes are available: 3 Insufficient cpu."
    lifecycle.handle(BackendEvent(ex_id, EventKind.PENDING, reason))
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex["_pendingReason"]) == ("initializing", reason)
    assert backend.calls == []


@pytest.mark.parametrize(
    ("status", "after"),
    [("stopping", "stopped"), ("running", "failed"), ("completed", "completed"), ("pending", "pending")],
)
def test_gone(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle, status: str, after: str
) -> None:
    ex_id = make_ex(store, status)
    lifecycle.handle(BackendEvent(ex_id, EventKind.GONE, "pods deleted"))
    ex = store.get_execution(ex_id)
    assert ex["_status"] == after
    if after == "failed":
        assert ex["_failureReason"] == "pods deleted"


def test_controller_failing_during_allocation_keeps_the_kubernetes_reason(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store)
    original = backend.allocate_controller
    reason = "pod ts-exc-x: ErrImagePull: image not found"

    def allocate_then_fail(execution: Any) -> Any:
        address = original(execution)
        lifecycle.handle(BackendEvent(ex_id, EventKind.CONTROLLER_FAILED, reason))
        return address

    backend.allocate_controller = allocate_then_fail  # type: ignore[method-assign]
    allocator.allocate(ex_id)
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex["_failureReason"]) == ("failed", reason)
    assert backend.names() == ["allocate_controller", "stop_execution", "stop_execution"]


def test_stopping_a_queued_execution(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store)
    allocator.enqueue(ex_id)
    assert lifecycle.request_stop(ex_id)["_status"] == "stopping"
    lifecycle.check_stops()
    assert store.get_execution(ex_id)["_status"] == "stopped"
    allocator.allocate(ex_id)  # its turn comes: skipped
    assert backend.names() == ["stop_execution"]


def test_event_of_unknown_execution_removes_its_objects(
    backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    lifecycle.handle(BackendEvent("ghost", EventKind.CONTROLLER_FAILED, "x"))
    assert backend.calls == [("stop_execution", "ghost", False)]


# -- stop flow ----------------------------------------------------------------------------------


def test_stop_flow(store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle) -> None:
    backend.stop_removes = False
    ex_id = make_ex(store, "running")
    backend.live.add(ex_id)
    assert lifecycle.request_stop(ex_id)["_status"] == "stopping"
    assert backend.calls == [("stop_execution", ex_id, False)]
    lifecycle.check_stops()
    assert store.get_execution(ex_id)["_status"] == "stopping"  # processes still there
    backend.live.discard(ex_id)
    lifecycle.check_stops()
    assert store.get_execution(ex_id)["_status"] == "stopped"


def test_controller_completing_during_the_stop_wins(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "running")
    lifecycle.request_stop(ex_id)
    store.set_status(ex_id, "completed")  # the EC finished before the stop landed
    lifecycle.check_stops()
    assert store.get_execution(ex_id)["_status"] == "completed"


def test_stop_backend_error_keeps_stopping(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    ex_id = make_ex(store, "running")
    backend.fail["stop_execution"] = BackendError("forbidden: cannot delete jobs.batch")
    with pytest.raises(BackendError):
        lifecycle.request_stop(ex_id)
    assert store.get_execution(ex_id)["_status"] == "stopping"


def test_reaper_force_stops_executions_stuck_in_stopping(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, settings: MasterSettings
) -> None:
    stuck = make_ex(store, "stopping")
    later = Lifecycle(
        store, backend, allocator, settings, now=lambda: datetime.now(UTC) + timedelta(minutes=2)
    )
    fresh = Lifecycle(store, backend, allocator, settings)
    assert fresh.reap() == []
    assert later.reap() == [stuck]
    assert store.get_execution(stuck)["_status"] == "stopped"
    assert backend.calls == [("stop_execution", stuck, True)]


# -- reconcile ----------------------------------------------------------------------------------


def test_reconcile_after_restart(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, lifecycle: Lifecycle
) -> None:
    pending = make_ex(store, "pending")
    adopted = make_ex(store, "running")
    vanished = make_ex(store, "running")
    half_made = make_ex(store, "scheduling")
    stopping = make_ex(store, "stopping")
    finished = make_ex(store, "completed")
    backend.live |= {adopted, half_made, finished, "unknown-ex"}

    report = lifecycle.reconcile()

    assert report.requeued == [pending] and allocator.queued() == [pending]
    assert report.adopted == [adopted]
    assert sorted(report.failed) == sorted([vanished, half_made])
    assert report.stopping == [stopping]
    assert report.deleted == sorted([finished, "unknown-ex"])
    assert store.get_execution(adopted)["_status"] == "running"
    assert store.get_execution(vanished)["_status"] == "failed"
    assert store.get_execution(vanished)["_failureReason"] == (
        f"the master restarted while execution {vanished} was running and its processes were gone"
    )
    assert store.get_execution(half_made)["_status"] == "failed"
    assert store.get_execution(finished)["_status"] == "completed"
    assert sorted(c[1] for c in backend.calls_of("stop_execution")) == sorted(
        [half_made, finished, "unknown-ex"]
    )
    lifecycle.check_stops()
    assert store.get_execution(stopping)["_status"] == "stopped"


def test_stopped_is_written_and_logged_once(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    """The gone event and the stop check both see a stop complete: one write, one log line."""
    backend.stop_removes = False
    ex_id = make_ex(store, "running")
    backend.live.add(ex_id)
    lifecycle.request_stop(ex_id)
    backend.live.discard(ex_id)
    updated = []
    with caplog.at_level("INFO", logger="teraslice_k8s.master.lifecycle"):
        lifecycle.handle(BackendEvent(ex_id, EventKind.GONE, ""))
        updated.append(store.get_execution(ex_id)["_updated"])
        lifecycle.check_stops()
        lifecycle.handle(BackendEvent(ex_id, EventKind.GONE, ""))
    assert store.get_execution(ex_id)["_updated"] == updated[0]
    assert [r.getMessage() for r in caplog.records if "-> stopped" in r.getMessage()] == [
        f"execution {ex_id}: stopping -> stopped (every process of the execution is gone)"
    ]
