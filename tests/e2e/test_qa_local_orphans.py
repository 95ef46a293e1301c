"""The local backend's processes do not outlive the process that started them.

A master (or ``teraslice-k8s run``) killed with SIGKILL cannot stop its executions; before this
rule its execution controller and workers kept running as orphans (a persistent job went on
processing forever) while the next master marked the execution ``failed`` because "its
processes were gone". Now each runtime process notices that its parent is gone and shuts down
as on SIGTERM: the controller writes ``terminated`` and every process exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

#: Bound of every wait here; exceeding it fails the test.
WAIT = 60.0
CLI = [sys.executable, "-m", "teraslice_k8s"]
PERSISTENT_JOB = {
    "name": "orphan-check",
    "lifecycle": "persistent",
    "workers": 2,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 100}],
}


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def runtime_children(pid: int) -> list[int]:
    """Child processes of ``pid`` that are runtime nodes (``NODE_TYPE`` set; Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"\0NODE_TYPE=" in b"\0" + (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_runtime_processes_shut_down_when_their_parent_is_killed(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(PERSISTENT_JOB))
    proc = subprocess.Popen(
        [*CLI, "run", str(job), "--data-dir", str(tmp_path / "d"), "--no-progress", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    children: list[int] = []
    try:
        db = tmp_path / "d" / "state.sqlite"
        wait_for(db.exists, "the store")
        store = SqliteStore(db)
        ex_id = wait_for(
            lambda: next((e["ex_id"] for e in store.list_executions() if e["_status"] == "running"), None),
            "a running execution",
        )
        children = wait_for(lambda: (c := runtime_children(proc.pid)) and len(c) == 3 and c, "3 processes")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        wait_for(lambda: not [pid for pid in children if alive(pid)], "the orphaned processes to exit")
        ex = store.get_execution(ex_id)
        assert ex["_status"] == "terminated"
        assert ex["_failureReason"].startswith(
            f"execution {ex_id} received shutdown before the slicer could complete"
        )
        store.close()
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
