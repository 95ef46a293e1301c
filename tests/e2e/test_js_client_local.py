"""Teraslice's own JavaScript client (teraslice-client-js 0.1.0 from npm) against a real local
master: the calls teraslice-cli, dashboards and scripts make, answered as Teraslice answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.js_client import JsClientError, run_js
from support.local_master import PERSISTENT_JOB, LocalMaster, local_master

pytestmark = pytest.mark.slow

ONCE_JOB: dict[str, Any] = {
    "name": "js-once",
    "workers": 1,
    "operations": [{"_op": "data_generator", "size": 20, "slice_size": 10}, {"_op": "noop"}],
}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[LocalMaster]:
    with local_master(tmp_path) as m:
        yield m


def test_submit_without_start_then_spec_status_and_start(master: LocalMaster) -> None:
    got = run_js(
        master.url,
        """
        const job = await client.jobs.submit(args.job, true);
        const spec = await job.spec();
        let before;
        try { before = await job.status(); } catch (e) { before = {code: e.code, message: e.message}; }
        await job.start();
        const status = await job.waitForStatus('completed', 100, 60000);
        const list = await client.jobs.list('completed');
        return {id: job.id(), spec, before, status, listed: list.map((ex) => ex.job_id)};
        """,
        args={"job": ONCE_JOB},
    )
    job_id = got["id"]
    assert got["spec"]["job_id"] == job_id
    assert {k: got["spec"][k] for k in ONCE_JOB} == ONCE_JOB
    assert got["spec"] == httpx.get(f"{master.url}/v1/jobs/{job_id}", timeout=30).json()
    assert got["before"] == {"code": 404, "message": f"No execution was found for job {job_id}"}
    assert got["status"] == "completed"
    assert got["listed"] == [job_id]


def test_client_errors_carry_teraslice_status_codes(master: LocalMaster) -> None:
    with pytest.raises(JsClientError) as err:
        run_js(master.url, "return await client.jobs.wrap('no-such-job').spec();")
    assert err.value.code == 404
    assert err.value.message == "Could not find job no-such-job"


def test_cluster_state_and_job_workers_during_a_persistent_run_and_after_stop(master: LocalMaster) -> None:
    got = run_js(
        master.url,
        """
        const count = (state) => Object.values(state).reduce((n, node) => n + node.active.length, 0);
        const before = await client.cluster.state();
        const job = await client.jobs.submit(args.job);
        await job.waitForStatus('running', 100, 60000);
        const workers = await waitFor(async () => {
            const w = await job.workers();
            return w.length === 2 && w;
        }, {what: 'job.workers() to list 2 workers'});
        const during = await client.cluster.state();
        const exId = await job.ex();
        const stopped = await job.stop();
        const statusAfter = await job.status();
        const empty = async () => count(await client.cluster.state()) === 0;
        await waitFor(empty, {what: 'an empty cluster state'});
        return {
            jobId: job.id(), exId, before, workers, during, stopped, statusAfter,
            workersAfter: await job.workers(), after: await client.cluster.state(),
        };
        """,
        args={"job": PERSISTENT_JOB},
    )
    job_id, ex_id = got["jobId"], got["exId"]
    node_id = socket.gethostname()
    assert [n["active"] for n in got["before"].values()] == [[]]
    # job.workers(): the worker entries of the job, each with the node id added by the client.
    assert [
        (w["assignment"], w["job_id"], w["ex_id"], w["node_id"], w["worker_id"] == w["pid"])
        for w in got["workers"]
    ] == [("worker", job_id, ex_id, node_id, True)] * 2
    during = got["during"][node_id]["active"]
    assert [(p["assignment"], p["job_id"], p["ex_id"]) for p in during] == [
        ("execution_controller", job_id, ex_id),
        ("worker", job_id, ex_id),
        ("worker", job_id, ex_id),
    ]
    assert [p["pid"] for p in during[1:]] == [w["pid"] for w in got["workers"]]
    assert got["stopped"] == {"status": "stopped"}
    assert got["statusAfter"] == "stopped"
    assert got["workersAfter"] == []
    assert [n["active"] for n in got["after"].values()] == [[]]
    assert master.service.backend.execution_ids() == set()
