"""The stop state machine with the local backend and real processes (issue 16 items 2, 3): a stop
landing at every step of the execution controller's start-up (a real controller process that
sends the stop itself right after the step: tests/support/ec_stop_at.py) and at every allocator
step ends ``stopped``, never ``failed``/``terminated``, with no process left; and stop + start
back to back, through the master's HTTP API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.local_master import LocalMaster, local_master, wait_for
from teraslice_k8s.runtime.execution_controller import STARTUP_STEPS

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "ec_stop_at.py"
JOB: dict[str, Any] = {
    "name": "local-stop-flow",
    "lifecycle": "persistent",
    "workers": 1,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[LocalMaster]:
    with local_master(tmp_path) as m:
        yield m


def assert_stopped_cleanly(master: LocalMaster, ex_id: str) -> None:
    ex = wait_for(
        lambda: (
            (e := master.service.store.get_execution(ex_id))["_status"]
            not in ("stopping", "pending", "scheduling", "initializing", "running", "recovering")
            and e
        ),
        f"{ex_id} to end",
    )
    assert (ex["_status"], ex.get("_failureReason") or "") == ("stopped", ""), ex.get("_failureReason")
    backend: Any = master.service.backend
    assert ex_id not in backend.execution_ids()
    assert backend.processes(ex_id) == {"execution_controller": [], "worker": []}


@pytest.mark.parametrize("step", [s for s in STARTUP_STEPS if s != "recovered"])
def test_stop_at_each_controller_start_up_step(
    master: LocalMaster, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setenv("TS_TEST_STOP_AT", step)
    monkeypatch.setenv("TS_TEST_MASTER_URL", master.url)
    backend: Any = master.service.backend
    backend.command = [sys.executable, str(SCRIPT)]
    ex_id = httpx.post(f"{master.url}/v1/jobs", json=JOB, timeout=30).json()["ex_id"]
    assert_stopped_cleanly(master, ex_id)


@pytest.mark.parametrize("step", ["scheduling", "controller_created", "initializing", "workers_created"])
def test_stop_at_each_allocator_step(master: LocalMaster, step: str) -> None:
    backend: Any = master.service.backend
    controller, workers = backend.allocate_controller, backend.allocate_workers

    def stop(ex_id: str) -> None:
        master.service.stop(ex_id, force=False, blocking=False, timeout_ms=None)

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

    backend.allocate_controller = allocate_controller
    backend.allocate_workers = allocate_workers
    ex_id = httpx.post(f"{master.url}/v1/jobs", json=JOB, timeout=30).json()["ex_id"]
    assert_stopped_cleanly(master, ex_id)


def test_stop_then_start_back_to_back(master: LocalMaster) -> None:
    ids = httpx.post(f"{master.url}/v1/jobs", json=JOB, timeout=30).json()
    job_id, ex_id = ids["job_id"], ids["ex_id"]
    store = master.service.store
    for _ in range(5):  # real processes: 5 round trips here, 50 on the Kubernetes emulator
        wait_for(lambda ex_id=ex_id: store.get_execution(ex_id)["_status"] == "running", "running")
        stop = httpx.post(f"{master.url}/v1/jobs/{job_id}/_stop", timeout=60)
        assert stop.json() == {"status": "stopped"}
        assert_stopped_cleanly(master, ex_id)
        start = httpx.post(f"{master.url}/v1/jobs/{job_id}/_start", timeout=60)
        assert start.status_code == 200, start.text
        ex_id = start.json()["ex_id"]
    wait_for(lambda: store.get_execution(ex_id)["_status"] == "running", "running")
