"""The start watchdog (master/pending.py) with a backend that sends no ``PENDING`` events, as the
local backend: only "still ``initializing`` ``slicer_timeout`` after allocation" applies.
Driven synchronously on a real SqliteStore with a test clock (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from teraslice_k8s.backend.base import BackendEvent, EventKind, PodWait, StartState
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.pending import pending_reason
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import RecordingBackend
from .test_lifecycle import make_ex

TIMEOUT = timedelta(seconds=10)


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lifecycle(store: SqliteStore, backend: RecordingBackend, clock: Clock) -> Lifecycle:
    settings = MasterSettings(slicer_timeout_ms=int(TIMEOUT.total_seconds() * 1000))
    return Lifecycle(store, backend, Allocator(store, backend), settings, now=clock)


def test_a_controller_that_starts_is_left_alone(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle, clock: Clock
) -> None:
    ex_id = make_ex(store, "initializing")
    assert lifecycle.pending.check() == []
    store.set_status(ex_id, "running")
    clock.offset = TIMEOUT * 10
    assert lifecycle.pending.check() == []
    assert store.get_execution(ex_id)["_status"] == "running"
    assert backend.calls == []


def test_an_execution_still_initializing_after_slicer_timeout_fails(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle, clock: Clock
) -> None:
    ex_id = make_ex(store, "initializing")
    clock.offset = TIMEOUT - timedelta(seconds=1)
    assert lifecycle.pending.check() == []
    clock.offset = TIMEOUT + timedelta(seconds=1)
    assert lifecycle.pending.check() == [ex_id]
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex["_failureReason"]) == (
        "failed",
        f"execution {ex_id} was still initializing 10s after allocation (slicer_timeout): "
        "its controller never reported running",
    )
    assert backend.calls == [("stop_execution", ex_id, False)]


def test_the_lifecycle_thread_waits_no_longer_than_the_next_scan(lifecycle: Lifecycle) -> None:
    assert lifecycle.pending.scan_interval == TIMEOUT / 4
    assert lifecycle.pending.wait_seconds() == 0.0  # never scanned: at once
    lifecycle.pending.check()
    assert 0 < lifecycle.pending.wait_seconds() <= 2.5


def test_pending_reason_is_the_controllers_then_a_workers() -> None:
    controller = PodWait("execution_controller", "c", "pod c: Unschedulable")
    worker = PodWait("worker", "w", "pod w: Unschedulable")
    event = BackendEvent("ex", EventKind.PENDING, "pod w: Unschedulable", StartState((worker, controller)))
    assert pending_reason(event) == "pod c: Unschedulable"
    assert pending_reason(BackendEvent("ex", EventKind.PENDING, "", StartState((worker,)))) == worker.reason
    assert pending_reason(BackendEvent("ex", EventKind.PENDING, "", StartState())) == ""
    # A backend that only gives a reason.
    assert pending_reason(BackendEvent("ex", EventKind.PENDING, "waiting for a slot")) == "waiting for a slot"
