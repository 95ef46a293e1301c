"""The stop state machine on the master's side (issue 16 items 2, 3): a stop injected at every
step of the allocator ends ``stopped``, only once the backend lists nothing of the execution,
never ``failed``; ``_start`` right after a stop waits for the clean-up instead of a 409.

Driven synchronously on a real SqliteStore and the recording backend, whose ``live`` set stands
for processes/objects that outlive ``stop_execution`` (``stop_removes=False``) until the test
removes them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from teraslice_k8s.backend.base import BackendEvent, EventKind
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.master.lifecycle import Lifecycle
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend, settle
from .test_lifecycle import make_ex

#: The allocator's steps, in order; the stop lands right at one of them.
ALLOCATOR_STEPS = ["queued", "scheduling", "controller_created", "initializing", "workers_created"]


@pytest.fixture
def allocator(store: SqliteStore, backend: RecordingBackend) -> Allocator:
    return Allocator(store, backend)


@pytest.fixture
def lifecycle(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, settings: MasterSettings
) -> Lifecycle:
    return Lifecycle(store, backend, allocator, settings)


def inject(backend: RecordingBackend, step: str, stop: Callable[[], None]) -> None:
    """Call ``stop`` right at ``step`` of the allocation (around the backend's calls)."""
    controller, workers = backend.allocate_controller, backend.allocate_workers

    def allocate_controller(execution: Any) -> Any:
        if step == "scheduling":
            stop()
        address = controller(execution)
        if step == "controller_created":
            stop()
        return address

    def allocate_workers(execution: Any) -> None:
        if step == "initializing":
            stop()
        workers(execution)
        if step == "workers_created":
            stop()

    backend.allocate_controller = allocate_controller  # type: ignore[method-assign]
    backend.allocate_workers = allocate_workers  # type: ignore[method-assign]


@pytest.mark.parametrize("step", ALLOCATOR_STEPS)
def test_stop_at_each_allocator_step_ends_stopped_only_when_nothing_is_left(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, lifecycle: Lifecycle, step: str
) -> None:
    backend.stop_removes = False  # processes outlive the stop call until the test removes them
    ex_id = make_ex(store)
    statuses: list[str] = []
    original = store.set_status

    def recording_set_status(ex: str, status: str, fields: Any = None) -> Any:
        record = original(ex, status, fields)
        statuses.append(status)
        if status == "stopped":
            assert ex not in backend.live, "stopped written while the execution's objects are left"
        return record

    store.set_status = recording_set_status  # type: ignore[method-assign]

    def stop() -> None:
        assert lifecycle.request_stop(ex_id)["_status"] == "stopping"
        lifecycle.check_stops()  # the lifecycle thread runs now: must not mark it stopped
        assert store.get_execution(ex_id)["_status"] == "stopping"

    if step == "queued":
        # Nothing was created yet: stopped at once, and the allocator skips it when its turn comes.
        lifecycle.request_stop(ex_id)
        lifecycle.check_stops()
        assert store.get_execution(ex_id)["_status"] == "stopped"
    inject(backend, step, stop)
    allocator.allocate(ex_id)

    if step != "queued":
        assert store.get_execution(ex_id)["_status"] == "stopping"
    created = [c for c in backend.calls if c[0].startswith("allocate")]
    if created:
        # Every object the allocator created was removed after it was created.
        last_create = max(i for i, c in enumerate(backend.calls) if c[0].startswith("allocate"))
        assert any(c[0] == "stop_execution" for c in backend.calls[last_create + 1 :]), backend.calls
    lifecycle.check_stops()
    if backend.live:
        assert store.get_execution(ex_id)["_status"] == "stopping"  # processes still exiting
        backend.live.clear()  # the last process exits
        lifecycle.check_stops()
    ex = store.get_execution(ex_id)
    assert (ex["_status"], ex.get("_failureReason")) == ("stopped", None)
    assert "failed" not in statuses and "terminated" not in statuses and "running" not in statuses
    assert statuses[-2:] == ["stopping", "stopped"]


def test_gone_event_does_not_mark_stopped_while_the_backend_still_lists_objects(
    store: SqliteStore, backend: RecordingBackend, lifecycle: Lifecycle
) -> None:
    # Kubernetes: the watched pods are gone but a ReplicaSet or Service is still listed.
    backend.stop_removes = False
    ex_id = make_ex(store, "running")
    backend.live.add(ex_id)
    lifecycle.request_stop(ex_id)
    lifecycle.handle(BackendEvent(ex_id, EventKind.GONE))
    assert store.get_execution(ex_id)["_status"] == "stopping"
    backend.live.clear()
    lifecycle.check_stops()
    assert store.get_execution(ex_id)["_status"] == "stopped"


def test_reaper_force_stops_but_waits_for_the_processes(
    store: SqliteStore, backend: RecordingBackend, allocator: Allocator, settings: MasterSettings
) -> None:
    backend.stop_removes = False
    stuck = make_ex(store, "stopping")
    backend.live.add(stuck)
    later = Lifecycle(
        store, backend, allocator, settings, now=lambda: datetime.now(UTC) + timedelta(minutes=2)
    )
    assert later.reap() == []
    assert backend.calls == [("stop_execution", stuck, True)]
    assert store.get_execution(stuck)["_status"] == "stopping"
    backend.live.clear()
    later.check_stops()
    assert store.get_execution(stuck)["_status"] == "stopped"


def test_start_right_after_a_stop_waits_for_the_clean_up_instead_of_409(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    backend.stop_removes = False
    response = client.post(
        "/v1/jobs", json={"name": "j", "operations": [{"_op": "data_generator"}, {"_op": "noop"}]}
    )
    ids = response.json()
    settle(service)
    store.set_status(ids["ex_id"], "running")
    stop = client.post(f"/v1/jobs/{ids['job_id']}/_stop", params={"blocking": "false"})
    assert stop.json() == {"status": "stopping"}
    # The processes exit while _start waits (another thread plays the backend).
    started = threading.Event()
    original = service.lifecycle.wait_changed

    def wait_changed(timeout: float) -> None:
        started.set()
        backend.live.discard(ids["ex_id"])
        original(timeout)

    service.lifecycle.wait_changed = wait_changed  # type: ignore[method-assign]
    again = client.post(f"/v1/jobs/{ids['job_id']}/_start")
    assert again.status_code == 200, again.text
    assert started.is_set()
    assert store.get_execution(ids["ex_id"])["_status"] == "stopped"
    assert again.json()["ex_id"] != ids["ex_id"]


def test_start_gives_up_after_the_stop_timeout_and_says_so(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    backend.stop_removes = False
    service.settings = dataclasses.replace(service.settings, shutdown_timeout_ms=300)
    response = client.post(
        "/v1/jobs", json={"name": "j", "operations": [{"_op": "data_generator"}, {"_op": "noop"}]}
    )
    ids = response.json()
    settle(service)
    store.set_status(ids["ex_id"], "running")
    client.post(f"/v1/jobs/{ids['job_id']}/_stop", params={"blocking": "false"})
    again = client.post(f"/v1/jobs/{ids['job_id']}/_start")
    assert again.status_code == 409
    assert again.json()["message"] == (
        f"Job {ids['job_id']} is currently running, cannot have the same job concurrently running"
        f" (waited 0.3 s for the clean-up of execution {ids['ex_id']})"
    )
