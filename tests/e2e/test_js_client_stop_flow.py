"""The stop flows of issue 16 through Teraslice's own JavaScript client (teraslice-client-js from
npm) against a real local master (real processes, SQLite): ``job.recover()`` then at once
``job.stop()`` ends ``stopped`` (it used to end ``failed``/``terminated``), and ``job.stop()``
then ``job.start()`` gives a new ``running`` execution (it used to get a 409 orphaned resources).
Nothing of a stopped execution is left running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.js_client import run_js
from support.local_master import LocalMaster, local_master

pytestmark = pytest.mark.slow

#: Persistent, one worker, fast slices: runs until stopped.
JOB: dict[str, Any] = {
    "name": "js-stop-flow",
    "lifecycle": "persistent",
    "workers": 1,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[LocalMaster]:
    with local_master(tmp_path) as m:
        yield m


def assert_nothing_left(master: LocalMaster, ex_id: str) -> None:
    backend: Any = master.service.backend
    assert ex_id not in backend.execution_ids()
    assert backend.processes(ex_id) == {"execution_controller": [], "worker": []}


def test_recover_then_stop_at_once_ends_stopped(master: LocalMaster) -> None:
    got = run_js(
        master.url,
        """
        const job = await client.jobs.submit(args.job);
        await job.waitForStatus('running', 100, 60000);
        const first = await job.ex();
        const firstStop = await job.stop();
        const rounds = [];
        for (let i = 0; i < 3; i += 1) {
            await job.recover();
            const exId = await job.ex();
            const stop = await job.stop();           // lands while the recovery starts up
            rounds.push({exId, stop, status: await job.status()});
        }
        return {first, firstStop, rounds};
        """,
        args={"job": JOB},
    )
    assert got["firstStop"] == {"status": "stopped"}
    ex_ids = [got["first"]] + [r["exId"] for r in got["rounds"]]
    assert len(set(ex_ids)) == 4
    for r in got["rounds"]:
        assert (r["stop"], r["status"]) == ({"status": "stopped"}, "stopped"), r
    store = master.service.store
    for ex_id in ex_ids:
        ex = store.get_execution(ex_id)
        assert (ex["_status"], ex.get("_failureReason") or "") == ("stopped", ""), ex.get("_failureReason")
        assert_nothing_left(master, ex_id)


def test_stop_then_start_at_once_runs_a_new_execution(master: LocalMaster) -> None:
    got = run_js(
        master.url,
        """
        const job = await client.jobs.submit(args.job);
        await job.waitForStatus('running', 100, 60000);
        const rounds = [];
        for (let i = 0; i < 3; i += 1) {
            const before = await job.ex();
            const stop = await job.stop();
            const start = await job.start();          // at once: no 409 orphaned resources
            await job.waitForStatus('running', 100, 60000);
            rounds.push({before, stop, start, after: await job.ex()});
        }
        await job.stop();
        return rounds;
        """,
        args={"job": JOB},
    )
    store = master.service.store
    for r in got:
        assert r["stop"] == {"status": "stopped"}
        assert r["start"]["ex_id"] == r["after"] != r["before"]
        assert store.get_execution(r["before"])["_status"] == "stopped"
        assert_nothing_left(master, r["before"])
