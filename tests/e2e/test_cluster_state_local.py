"""``GET /cluster/state`` of a real local master lists exactly the live processes, before, during
and after a run, under every ``hostname`` / ``master_hostname`` setting.

Regression (issue 16 item 1, issue 12 item 4): the route served its first answer forever, so a
master asked for its state before a run kept answering ``active: []`` during it; with a pinned
``hostname`` and ``master_hostname: 127.0.0.1`` that was the order a user happened to take.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import httpx
import pytest

from support.local_master import PERSISTENT_JOB, LocalMaster, local_master, wait_for
from teraslice_k8s.models.config import TerasliceConfig

pytestmark = pytest.mark.slow

HOSTNAME_SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "pinned-both": {"hostname": "127.0.0.1", "master_hostname": "127.0.0.1"},
    "hostname-name": {"hostname": "ts-node.example.test"},
    "master-hostname-only": {"master_hostname": "127.0.0.1"},
}


def expected_state(master: LocalMaster, hostname: str, runs: list[tuple[str, str]]) -> dict[str, Any]:
    """The native node with one ``active`` entry per live process of each ``(job_id, ex_id)``:
    the controller first, then the workers in start order (read from the backend's processes)."""
    backend: Any = master.service.backend
    active = []
    for job_id, ex_id in runs:
        procs = backend.processes(ex_id)
        for role in ("execution_controller", "worker"):
            for pid in procs[role]:
                active.append(
                    {
                        "worker_id": pid,
                        "assignment": role,
                        "pid": pid,
                        "ex_id": ex_id,
                        "job_id": job_id,
                        "assets": [],
                    }
                )
    cpus = os.cpu_count() or 1
    node_id = socket.gethostname()
    return {
        node_id: {
            "node_id": node_id,
            "hostname": hostname,
            "pid": os.getpid(),
            "node_version": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "teraslice_version": "3.18.0",
            "total": cpus,
            "state": "connected",
            "available": max(cpus - len(active), 0),
            "active": active,
        }
    }


def state(url: str, prefix: str = "/v1") -> dict[str, Any]:
    response = httpx.get(f"{url}{prefix}/cluster/state", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def active_count(url: str) -> int:
    return sum(len(node["active"]) for node in state(url).values())


@pytest.mark.parametrize("setting", list(HOSTNAME_SETTINGS))
def test_cluster_state_lists_exactly_the_live_processes(tmp_path: Any, setting: str) -> None:
    teraslice = HOSTNAME_SETTINGS[setting]
    hostname = teraslice.get("hostname") or TerasliceConfig().hostname  # the default: first IPv4
    with local_master(tmp_path, **teraslice) as master:
        url = master.url
        # Before: asked first (this is what made the old cache serve `active: []` for good).
        assert state(url) == expected_state(master, hostname, [])
        assert state(url, "") == expected_state(master, hostname, [])

        ids = httpx.post(f"{url}/v1/jobs", json=PERSISTENT_JOB, timeout=30).json()
        job_id, ex_id = ids["job_id"], ids["ex_id"]
        run = [(job_id, ex_id)]
        wait_for(lambda: master.service.store.get_execution(ex_id)["_status"] == "running", "running")
        wait_for(lambda: active_count(url) == 3, "the controller and 2 workers in /cluster/state")
        during = state(url)
        assert during == expected_state(master, hostname, run)
        assert [p["assignment"] for p in during[socket.gethostname()]["active"]] == [
            "execution_controller",
            "worker",
            "worker",
        ]
        assert state(url, "") == during

        # A worker that joins shows on the very next request (no TTL to wait out).
        scaled = httpx.post(f"{url}/v1/ex/{ex_id}/_workers?add=1", timeout=30)
        assert scaled.status_code == 200, scaled.text
        assert state(url) == expected_state(master, hostname, run)
        assert active_count(url) == 4

        stopped = httpx.post(f"{url}/v1/jobs/{job_id}/_stop", timeout=120)
        assert stopped.json() == {"status": "stopped"}, stopped.text
        # After: empty once the processes are gone, and then for good.
        wait_for(lambda: active_count(url) == 0, "an empty cluster state after the stop")
        assert master.service.backend.execution_ids() == set()
        assert state(url) == expected_state(master, hostname, [])
        assert state(url, "") == expected_state(master, hostname, [])


def test_txt_workers_and_cluster_state_agree_during_a_run(tmp_path: Any) -> None:
    with local_master(tmp_path) as master:
        url = master.url
        assert state(url)  # cached before the run
        ids = httpx.post(f"{url}/v1/jobs", json=PERSISTENT_JOB, timeout=30).json()
        wait_for(lambda: active_count(url) == 3, "3 processes")
        table = httpx.get(f"{url}/txt/workers?headers=false&fields=assignment,ex_id,pid", timeout=30).text
        listed = [
            (p["assignment"], p["ex_id"], str(p["pid"]))
            for node in state(url).values()
            for p in node["active"]
        ]
        assert [tuple(line.split()) for line in table.strip().splitlines()] == listed
        assert {ex for _, ex, _ in listed} == {ids["ex_id"]}
        httpx.post(f"{url}/v1/jobs/{ids['job_id']}/_stop", timeout=120)
        wait_for(lambda: active_count(url) == 0, "an empty cluster state after the stop")
