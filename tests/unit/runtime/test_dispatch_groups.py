"""Short slices travel in groups (docs/execution-lifecycle.md, "Dispatch"): a worker whose
slices take well under ``GROUP_SECONDS`` asks for up to two groups of slices at once and reports
their results together. Slicing order, state records, analytics and counts stay exactly those of
one slice per message, and a worker that dies holding a group loses none of its slices."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.runtime import worker as worker_module
from teraslice_k8s.runtime.server import WorkerConnection
from teraslice_k8s.runtime.worker import MAX_GROUP

from .harness import WAIT, Cluster, Gate, test_ops, wait_until

__all__ = ["test_ops"]

SLICES = 400
TINY = {"_op": "data_generator", "size": SLICES, "slice_size": 1}


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every slice counts as short: after its first slice a worker asks for full groups (the
    real threshold depends on the machine's speed, which a test must not)."""
    monkeypatch.setattr(worker_module, "GROUP_SECONDS", 3600.0)


def spy(c: Cluster) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages the controller sent, messages it received), recorded on the controller side."""
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    send, on_message = WorkerConnection.send, c.controller.dispatch.worker_message

    async def record_send(self: WorkerConnection, message: dict[str, Any]) -> None:
        sent.append(message)
        await send(self, message)

    def record_message(conn: WorkerConnection, message: dict[str, Any]) -> None:
        received.append(message)
        on_message(conn, message)

    c.controller.dispatch.worker_message = record_message  # type: ignore[method-assign]
    WorkerConnection.send = record_send  # type: ignore[method-assign]
    return sent, received


def analytics(tmp_path: Path, ex_id: str) -> list[dict[str, Any]]:
    """The analytics records as stored (the store API only counts them)."""
    with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        rows = db.execute("SELECT doc FROM analytics WHERE ex_id = ?", (ex_id,)).fetchall()
    return [json.loads(doc) for (doc,) in rows]


def expected_state(c: Cluster, ex: dict[str, Any]) -> None:
    """Every slice completed once, in slicing order, with its record and analytics."""
    slices = c.slices()
    assert [s["slicer_order"] for s in slices] == list(range(SLICES))
    assert [s["request"] for s in slices] == [f'{{"count":1,"processed":{i}}}' for i in range(SLICES)]
    assert {s["state"] for s in slices} == {"completed"}
    assert [s["record_count"] for s in slices] == [1] * SLICES
    assert {k: ex["_slicer_stats"][k] for k in ("processed", "failed", "records", "queued")} == {
        "processed": SLICES,
        "failed": 0,
        "records": SLICES,
        "queued": 0,
    }


async def test_short_slices_go_in_groups_with_exact_records_and_analytics(
    tmp_path: Path, groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Cluster(tmp_path, {"operations": [TINY, {"_op": "noop"}]})
    monkeypatch.setattr(WorkerConnection, "send", WorkerConnection.send)  # restored after the test
    sent, received = spy(c)
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    expected_state(c, ex)
    assert ex["_slicer_stats"]["workers_joined"] == 2
    assert c.store.count_analytics(c.ex_id) == 2 * SLICES  # one per operation per slice
    # Grouped both ways, within the bound, and every slice was sent and reported exactly once.
    groups_sent = [m["slices"] for m in sent if m["type"] == "slices"]
    assert groups_sent
    assert max(len(g) for g in groups_sent) <= 2 * MAX_GROUP
    dispatched = [m["slice"]["slice_id"] for m in sent if m["type"] == "slice"]
    dispatched += [s["slice_id"] for g in groups_sent for s in g]
    assert sorted(dispatched) == sorted(s["slice_id"] for s in c.slices())
    reported = [m["slice_id"] for m in received if m["type"] == "complete"]
    reported += [r["slice_id"] for m in received if m["type"] == "results" for r in m["results"]]
    assert sorted(reported) == sorted(dispatched)
    assert any(m["type"] == "results" for m in received)
    c.close()


async def test_a_worker_that_dies_holding_a_group_has_each_slice_redispatched_once(
    tmp_path: Path, groups: None, test_ops: None, caplog: pytest.LogCaptureFixture
) -> None:
    held_at = 100
    ops = [TINY, {"_op": "gate_at", "at": [held_at]}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 0})
    await c.start(workers=1)
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    # The worker runs slice 100 and holds the rest of its group (and the next group) behind it.
    c.worker_tasks[0].cancel()  # dies mid-slice
    await wait_until(lambda: c.controller.connections == {})
    lost = [
        str(r.args[1])
        for r in caplog.records
        if r.msg == "worker %s left with slice %s in flight" and isinstance(r.args, tuple)
    ]
    assert len(lost) > 1
    Gate.gate.set()
    c.add_worker()
    ex = await c.finish()
    assert ex["_status"] == "completed"
    expected_state(c, ex)
    assert ex["_slicer_stats"]["workers_disconnected"] == 1
    # Each lost slice was completed once, by the second worker (analytics name the worker).
    by_worker = Counter(
        a["worker_id"] for a in analytics(tmp_path, c.ex_id) if a["slice_id"] in lost and a["order"] == 0
    )
    assert by_worker == {c.workers[1].worker_id: len(lost)}
    c.close()


async def test_a_stop_while_waiting_for_slices_ends_the_worker(tmp_path: Path) -> None:
    """A worker idle in its wait for the next message leaves as soon as it is told to stop."""
    c = Cluster(tmp_path, {"lifecycle": "persistent", "operations": [TINY, {"_op": "noop"}]})
    await c.start()
    c.controller.pause()  # nothing is dispatched: the worker waits
    worker = c.add_worker()
    await wait_until(lambda: worker.worker_id in c.controller.connections)
    await wait_until(lambda: worker._waiting is not None)
    worker.request_shutdown()
    assert await asyncio.wait_for(c.worker_tasks[0], WAIT) == 0
    await wait_until(lambda: c.controller.connections == {})
    c.controller.request_shutdown()
    assert (await c.finish())["_status"] == "terminated"
    c.close()
