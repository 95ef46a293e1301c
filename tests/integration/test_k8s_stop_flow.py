"""The stop state machine with the Kubernetes backend, end to end on the emulator (issue 16 items
2, 3): a master (HTTP app, allocator, lifecycle, KubernetesBackend over HTTP) and a
:class:`~support.kubelet.Kubelet` running real in-process execution controllers for the Jobs it
creates and terminating pods gracefully when their owners are deleted.

- a stop injected at every allocator step and at every step of the controller's start-up (fresh
  and recovery) ends ``stopped``, never ``failed``/``terminated``;
- ``stopped`` is written only once the API server lists no object of the execution (checked in
  the store's write itself);
- stop + start back to back, 50 times: always ``stopped`` then ``running``, never a 409.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import NAMESPACE
from support.kubelet import Kubelet, StepHook
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.runtime.execution_controller import STARTUP_STEPS
from teraslice_k8s.runtime.settings import RuntimeSettings
from teraslice_k8s.store.base import Page, SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore
from unit.master.fakes import ApiClient

WAIT = 30.0
JOB = {
    "name": "stop-flow",
    "lifecycle": "persistent",
    "workers": 1,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
}
ALLOCATOR_STEPS = ["scheduling", "controller_created", "initializing", "workers_created"]


def objects_of(emulator: EmulatorThread, ex_id: str) -> list[tuple[str, str]]:
    """(resource, name) of every object labelled with the execution id, deleting ones included."""
    return sorted(
        (res, name)
        for (res, _, name), obj in emulator.objects().items()
        if (obj.get("metadata", {}).get("labels") or {}).get("teraslice.terascope.io/exId") == ex_id
    )


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Bounded polling for a condition with no event to wait on."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Master:
    """A master on the emulator, its store's status history, and the kubelet."""

    def __init__(
        self, tmp_path: Path, config: SysConfig, backend: KubernetesBackend, emulator: EmulatorThread
    ):
        self.emulator = emulator
        self.path = tmp_path / "state.sqlite"
        self.store = SqliteStore(self.path, synchronous="NORMAL")
        self.history: dict[str, list[str]] = {}
        self.violations: list[str] = []
        original = self.store.set_status

        def set_status(ex_id: str, status: str, fields: Any = None) -> Any:
            record = original(ex_id, status, fields)
            self.history.setdefault(ex_id, []).append(status)
            if status == "stopped":
                left = objects_of(emulator, ex_id)
                if left:
                    self.violations.append(f"{ex_id} stopped while {left} were left")
            return record

        self.store.set_status = set_status  # type: ignore[method-assign]
        settings = dataclasses.replace(MasterSettings.from_config(config), stop_poll_ms=20)
        self.service = MasterService(
            self.store, backend, settings, job_validator(config), prepare=spec_preparer(config)
        )
        self.backend = backend
        self.client = ApiClient(create_app(self.service))
        #: ex_id -> the controller's start-up hook (None: no hook)
        self.step_hook: Callable[[str], StepHook | None] = lambda ex_id: None
        self.kubelet = Kubelet(
            emulator,
            NAMESPACE,
            self.path,
            RuntimeSettings(hostname="127.0.0.1", shutdown_timeout=10),
            on_step=self._hook,
        )

    def _hook(self, ex_id: str) -> StepHook | None:
        """The current ``step_hook``, looked up at each controller start (tests set it later)."""
        return self.step_hook(ex_id)

    def status(self, ex_id: str) -> str:
        return str(self.store.get_execution(ex_id)["_status"])

    def wait_status(self, ex_id: str, status: str) -> None:
        try:
            wait_for(lambda: self.status(ex_id) == status, f"{ex_id} {status}")
        except AssertionError as error:
            left = objects_of(self.emulator, ex_id)
            raise AssertionError(
                f"{error}: is {self.status(ex_id)}, objects left {left}, kubelet errors {self.kubelet.errors}"
            ) from None

    def close(self) -> None:
        self.client.close()
        self.service.allocator.close()
        self.service.lifecycle.close()
        self.service.stats.close()
        self.service.controllers.close()
        self.kubelet.__exit__(None, None, None)
        self.store.close()


@pytest.fixture
def master(
    tmp_path: Path, config: SysConfig, make_backend: Any, emulator: EmulatorThread
) -> Iterator[Master]:
    m = Master(tmp_path, config, make_backend(), emulator)
    m.kubelet.__enter__()
    m.service.start()
    yield m
    m.close()
    assert m.kubelet.errors == []


def assert_stopped_cleanly(m: Master, ex_id: str) -> None:
    ex = m.store.get_execution(ex_id)
    assert (ex["_status"], ex.get("_failureReason") or "") == ("stopped", ""), m.history.get(ex_id)
    assert not {"failed", "terminated"} & set(m.history.get(ex_id, []))
    # `stopped` was written while the API listed nothing (m.violations, checked inside the write);
    # a controller pod the emulated Job controller created from a snapshot taken before the Job's
    # deletion can still appear afterwards, as in a real cluster, until the emulated GC removes it.
    wait_for(lambda: objects_of(m.emulator, ex_id) == [], f"the objects of {ex_id} to be gone")
    assert ex_id not in m.backend.execution_ids()
    assert ex_id not in m.kubelet.running_controllers()
    assert m.violations == []


@pytest.mark.parametrize("step", ALLOCATOR_STEPS)
def test_stop_at_each_allocator_step(master: Master, step: str) -> None:
    m = master
    backend = m.backend
    stopped: list[str] = []

    def stop(ex_id: str) -> None:
        response = m.client.post(f"/v1/ex/{ex_id}/_stop", params={"blocking": "false"})
        assert response.json() == {"status": "stopping"}, response.text
        stopped.append(ex_id)

    controller, workers = backend.allocate_controller, backend.allocate_workers

    def allocate_controller(execution: Any) -> Any:
        if step == "scheduling":
            stop(execution["ex_id"])
        address = controller(execution)
        if step == "controller_created":
            stop(execution["ex_id"])
        return address

    def allocate_workers(execution: Any) -> None:
        if step == "initializing":
            stop(execution["ex_id"])
        workers(execution)
        if step == "workers_created":
            stop(execution["ex_id"])

    backend.allocate_controller = allocate_controller  # type: ignore[method-assign]
    backend.allocate_workers = allocate_workers  # type: ignore[method-assign]
    ex_id = m.client.post("/v1/jobs", json=JOB).json()["ex_id"]
    m.wait_status(ex_id, "stopped")
    assert stopped == [ex_id]
    wait_for(lambda: ex_id not in m.kubelet.running_controllers(), "the controller to exit")
    assert_stopped_cleanly(m, ex_id)


def stop_at(m: Master, step: str) -> Callable[[str], StepHook]:
    """A hook factory: the controller of an execution sends ``_stop`` for it (through the
    master's HTTP app, not blocking) right after its start-up step ``step``."""

    def factory(ex_id: str) -> StepHook:
        async def on_step(name: str) -> None:
            if name == step:
                response = await asyncio.to_thread(
                    m.client.post, f"/v1/ex/{ex_id}/_stop", params={"blocking": "false"}
                )
                assert response.status_code == 200, response.text

        return on_step

    return factory


@pytest.mark.parametrize("step", [s for s in STARTUP_STEPS if s != "recovered"])
def test_stop_at_each_controller_start_up_step(master: Master, step: str) -> None:
    m = master
    m.step_hook = stop_at(m, step)
    ex_id = m.client.post("/v1/jobs", json=JOB).json()["ex_id"]
    m.wait_status(ex_id, "stopped")
    assert_stopped_cleanly(m, ex_id)


@pytest.mark.parametrize("step", list(STARTUP_STEPS))
def test_stop_at_each_step_of_a_recover(master: Master, step: str) -> None:
    m = master
    ids = m.client.post("/v1/jobs", json=JOB).json()
    m.wait_status(ids["ex_id"], "running")
    assert m.client.post(f"/v1/ex/{ids['ex_id']}/_stop").json() == {"status": "stopped"}
    # No worker runs here, so the source's queued slices could never be re-run and the recovery
    # would not get past "status_written": let them have finished (tests/unit/runtime covers a
    # stop while slices are being recovered, with workers).
    for record in m.store.list_slices(SliceFilter(ex_id=ids["ex_id"]), Page(size=10_000)):
        m.store.update_slice(record["slice_id"], {"state": "completed"})
    m.step_hook = stop_at(m, step)
    recovered = m.client.post(f"/v1/ex/{ids['ex_id']}/_recover").json()["ex_id"]
    m.wait_status(recovered, "stopped")
    assert m.history[recovered][0] != "failed"
    assert_stopped_cleanly(m, recovered)


def test_restart_fifty_times_in_a_row(master: Master) -> None:
    m = master
    ids = m.client.post("/v1/jobs", json=JOB).json()
    job_id, ex_id = ids["job_id"], ids["ex_id"]
    m.wait_status(ex_id, "running")
    seen = [ex_id]
    for _ in range(50):
        stop = m.client.post(f"/v1/jobs/{job_id}/_stop")
        assert (stop.status_code, stop.json()) == (200, {"status": "stopped"}), stop.text
        assert objects_of(m.emulator, ex_id) == []
        start = m.client.post(f"/v1/jobs/{job_id}/_start")
        assert start.status_code == 200, start.text
        ex_id = start.json()["ex_id"]
        seen.append(ex_id)
        m.wait_status(ex_id, "running")
    assert len(set(seen)) == 51
    for old in seen[:-1]:
        assert_stopped_cleanly(m, old)
        assert m.history[old][-2:] == ["stopping", "stopped"]
    # Only the last execution has objects and a running controller.
    assert m.backend.execution_ids() == {seen[-1]}
    assert m.kubelet.running_controllers() == [seen[-1]]
