"""``teraslice-k8s run`` and the local backend end to end: real processes, SQLite store.

Faults: a worker killed mid-slice, the execution controller killed, a job stopped mid-run.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.backend.base import BackendError, BackendEvent, EventKind
from teraslice_k8s.backend.local import LocalBackend
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.store.base import Page, SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAIN_JOB = ROOT / "examples" / "jobs" / "data-generator.json"
#: Bound of every wait here; exceeding it fails the test.
WAIT = 120.0
CLI = [sys.executable, "-m", "teraslice_k8s"]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def slices(store: SqliteStore, ex_id: str) -> list[dict[str, Any]]:
    return store.list_slices(SliceFilter(ex_id=ex_id), Page(size=10000, sort="slicer_order:asc"))


def write_job(tmp_path: Path, job: dict[str, Any]) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


def children_by_role(pid: int) -> dict[str, list[int]]:
    """Child processes of ``pid`` by ``NODE_TYPE`` (Linux /proc)."""
    roles: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        for item in env:
            if item.startswith(b"NODE_TYPE="):
                roles.setdefault(item.split(b"=", 1)[1].decode(), []).append(int(entry.name))
    return roles


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_main_example_job_completes_with_exact_record_count(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.run(
        [*CLI, "run", str(MAIN_JOB), "--data-dir", str(data), "--no-progress", "--json"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    job = json.loads(MAIN_JOB.read_text())
    size = job["operations"][0]["size"]
    assert summary["status"] == "completed"
    assert summary["records"] == size
    assert summary["slices_failed"] == 0
    store = SqliteStore(data / "state.sqlite")
    ex = store.get_execution(summary["ex_id"])
    assert ex["_status"] == "completed"
    records = slices(store, summary["ex_id"])
    assert {r["state"] for r in records} == {"completed"}
    assert sum(r["record_count"] for r in records) == size
    assert len(records) == summary["slices_completed"]
    assert ex["_slicer_stats"]["workers_joined"] == job["workers"]
    store.close()


def test_run_shows_stdout_operation_output(tmp_path: Path) -> None:
    job = ROOT / "examples" / "jobs" / "data-generator-stdout.json"
    proc = subprocess.run(
        [*CLI, "run", str(job), "--data-dir", str(tmp_path / "d"), "--json"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) == 10
    assert {tuple(sorted(r)) for r in records} == {
        ("bytes", "created", "ip", "ipv6", "location", "url", "userAgent", "uuid")
    }
    assert json.loads(lines[-1])["records"] == 10


def test_run_rejects_an_invalid_job_with_field_paths(tmp_path: Path) -> None:
    job = write_job(
        tmp_path, {"name": "bad", "operations": [{"_op": "data_generator", "size": 0}, {"_op": "foo"}]}
    )
    proc = subprocess.run(
        [*CLI, "run", str(job), "--data-dir", str(tmp_path / "d"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{job}: operations[0].size: must be > 0",
        f'{job}: operations[1]._op: unknown operation "foo"',
    ]


class Local:
    """A LocalBackend + SQLite store driven like the master's allocator does."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "state.sqlite"
        config = tmp_path / "teraslice.yaml"
        config.write_text(
            "teraslice:\n  cluster_manager_type: local\n  shutdown_timeout: 10000\n"
            f"  storage:\n    type: sqlite\n    path: {self.db}\n"
        )
        self.store = SqliteStore(self.db)
        self.events: queue.Queue[BackendEvent] = queue.Queue()
        self.backend = LocalBackend(config_path=config, log_dir=tmp_path / "logs", shutdown_timeout=10)
        self.backend.start(self.events.put)

    def submit(self, job: dict[str, Any]) -> str:
        record = {
            "name": "e2e",
            "lifecycle": "once",
            "workers": 1,
            "max_retries": 0,
            "analytics": False,
            **job,
            "job_id": str(uuid.uuid4()),
            "ex_id": str(uuid.uuid4()),
            "metadata": {},
            "_status": "pending",
        }
        ex_id = str(self.store.create_execution(record)["ex_id"])
        Allocator(self.store, self.backend).allocate(ex_id)
        return ex_id

    def status(self, ex_id: str) -> str:
        return str(self.store.get_execution(ex_id)["_status"])

    def event(self, ex_id: str, kind: EventKind) -> BackendEvent:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=1)
            except queue.Empty:
                continue
            if event.ex_id == ex_id and event.kind == kind:
                return event
        raise AssertionError(f"no {kind} event for {ex_id}")

    def close(self) -> None:
        self.backend.close()
        self.store.close()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    env = Local(tmp_path)
    yield env
    env.close()


SLOW_JOB = {
    "operations": [{"_op": "data_generator", "size": 6, "slice_size": 1}, {"_op": "delay", "ms": 400}],
}
#: Runs for 40 x 400 ms / workers: long enough to be interrupted whatever the machine's load.
LONG_JOB = {
    "operations": [{"_op": "data_generator", "size": 40, "slice_size": 1}, {"_op": "delay", "ms": 400}],
}


def test_local_backend_events_and_cluster_state(local: Local) -> None:
    ex_id = local.submit(
        {"operations": [{"_op": "data_generator", "size": 50}, {"_op": "noop"}], "workers": 2}
    )
    state = local.backend.cluster_state()
    (node,) = state.values()
    assert node["state"] == "connected"
    assert node["teraslice_version"] == "3.18.0"  # as a native Teraslice node reports it
    roles = sorted(item["assignment"] for item in node["active"] if item["ex_id"] == ex_id)
    assert roles in (["execution_controller", "worker", "worker"], ["execution_controller", "worker"], [])
    local.event(ex_id, EventKind.CONTROLLER_SUCCEEDED)
    local.event(ex_id, EventKind.GONE)
    assert local.status(ex_id) == "completed"
    assert local.backend.execution_ids() == set()


def test_worker_killed_mid_slice_is_redispatched_and_counted_once(local: Local) -> None:
    ex_id = local.submit(SLOW_JOB)
    started = wait_for(
        lambda: [s for s in slices(local.store, ex_id) if s["state"] == "start"], "a slice in flight"
    )
    (worker_pid,) = local.backend.processes(ex_id)["worker"]
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: not local.backend.processes(ex_id)["worker"], "the killed worker to be reaped")
    with pytest.raises(BackendError, match="it has 0"):
        local.backend.scale_workers(ex_id, "remove", 1)  # same rule as the Kubernetes backend
    assert local.backend.scale_workers(ex_id, "add", 1) == 1
    local.event(ex_id, EventKind.CONTROLLER_SUCCEEDED)
    ex = local.store.get_execution(ex_id)
    assert ex["_status"] == "completed"
    records = slices(local.store, ex_id)
    assert [r["state"] for r in records] == ["completed"] * 6
    assert sum(r["record_count"] for r in records) == 6
    assert ex["_slicer_stats"]["records"] == 6
    assert ex["_slicer_stats"]["workers_disconnected"] >= 1
    assert started[0]["slice_id"] in {r["slice_id"] for r in records}


def test_killed_controller_is_reported_with_exit_code_and_output(local: Local) -> None:
    ex_id = local.submit(LONG_JOB)
    wait_for(lambda: local.status(ex_id) == "running", "running")
    (ec_pid,) = local.backend.processes(ex_id)["execution_controller"]
    os.kill(ec_pid, signal.SIGKILL)
    event = local.event(ex_id, EventKind.CONTROLLER_FAILED)
    assert event.reason.startswith("execution controller exited with code -9 (SIGKILL): ")
    local.event(ex_id, EventKind.GONE)
    assert local.backend.processes(ex_id) == {"execution_controller": [], "worker": []}


def test_controller_route_reaches_the_local_controller(local: Local) -> None:
    """``call_controller``: the master's fallback route, to the controller's 127.0.0.1 port."""
    ex_id = local.submit(LONG_JOB)
    wait_for(lambda: local.status(ex_id) == "running", "running")
    ex = local.store.get_execution(ex_id)
    assert local.backend.call_controller(ex, "POST", "/pause", {}, 10) == {"status": "paused"}
    assert local.backend.call_controller(ex, "POST", "/resume", {}, 10) == {"status": "running"}
    assert local.backend.call_controller(ex, "POST", "/loglevel", {"level": "warn"}, 10) == {"level": "warn"}
    assert local.backend.call_controller(ex, "GET", "/analytics", {}, 10)["ex_id"] == ex_id


def _start_run(tmp_path: Path, job: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *CLI,
            "run",
            str(write_job(tmp_path, job)),
            "--data-dir",
            str(tmp_path / "d"),
            "--no-progress",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _running_ex(tmp_path: Path) -> tuple[SqliteStore, str]:
    db = tmp_path / "d" / "state.sqlite"
    wait_for(db.exists, "the store")
    store = SqliteStore(db)

    def running() -> str | None:
        for ex in store.list_executions():
            if ex["_status"] == "running":
                return str(ex["ex_id"])
        return None

    return store, wait_for(running, "a running execution")


def test_run_marks_the_execution_failed_when_the_controller_dies(tmp_path: Path) -> None:
    proc = _start_run(tmp_path, {"name": "ec-dies", "workers": 1, **LONG_JOB})
    store, ex_id = _running_ex(tmp_path)
    roles = wait_for(lambda: children_by_role(proc.pid).get("execution_controller"), "controller process")
    os.kill(roles[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "failed"
    ex = store.get_execution(ex_id)
    assert ex["_status"] == "failed"
    assert ex["_failureReason"].startswith("execution controller exited with code -9 (SIGKILL): ")
    store.close()


def test_run_fails_fast_when_every_worker_crashes(tmp_path: Path) -> None:
    proc = _start_run(
        tmp_path,
        {"name": "bad-workers", "workers": 1, **LONG_JOB},
    )
    store, ex_id = _running_ex(tmp_path)
    (worker,) = wait_for(lambda: children_by_role(proc.pid).get("worker"), "worker process")
    os.kill(worker, signal.SIGKILL)
    _out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1, err
    ex = store.get_execution(ex_id)
    assert ex["_status"] == "failed"
    assert ex["_failureReason"].startswith("every worker exited: worker-1 exited with code -9 (SIGKILL): ")
    store.close()


def test_stopping_a_run_mid_way_ends_stopped_with_no_processes_left(tmp_path: Path) -> None:
    proc = _start_run(tmp_path, {"name": "stop-me", "workers": 2, **LONG_JOB})
    store, ex_id = _running_ex(tmp_path)
    workers = wait_for(lambda: children_by_role(proc.pid).get("worker"), "worker processes")
    wait_for(lambda: any(s["state"] == "completed" for s in slices(store, ex_id)), "a completed slice")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    assert store.get_execution(ex_id)["_status"] == "stopped"
    assert not [pid for pid in workers if alive(pid)]
    assert children_by_role(proc.pid) == {}
    store.close()
