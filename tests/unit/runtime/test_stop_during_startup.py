"""A stop landing at every step of the execution controller's start-up, of a fresh start and of
a recovery (issue 16 item 2): the controller must start nothing more, write no status over
``stopping`` (not ``running``, ``failed`` or ``terminated``) and exit 0; the master then writes
``stopped`` once its processes are gone.

The stop is injected exactly at a step through the controller's ``on_step`` hook (no sleep), in
the two orders a real stop can take: the master's ``stopping`` write alone (the SIGTERM has not
arrived yet), and ``stopping`` followed by the SIGTERM.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from teraslice_k8s.runtime.execution_controller import STARTUP_STEPS, ExecutionController

from .harness import WAIT, Cluster, test_ops
from .test_recovery import recovery_of

__all__ = ["test_ops"]

GEN = {"_op": "data_generator", "size": 1000, "slice_size": 100}
FRESH_STEPS = [s for s in STARTUP_STEPS if s != "recovered"]


def with_stop_at(c: Cluster, step: str, *, signal: bool, last_write: str) -> list[str]:
    """Replace ``c.controller`` with one that gets the stop right after ``step``; returns the
    steps it goes through. The master writes ``stopping``; the SIGTERM of the backend follows
    (``signal``), or does not arrive before the controller's next status write. After its
    ``last_write`` step the controller writes no status any more, so there the SIGTERM is
    always sent (as the backend always does)."""
    seen: list[str] = []
    order = list(STARTUP_STEPS)

    async def on_step(name: str) -> None:
        seen.append(name)
        if name == step:
            await asyncio.to_thread(c.store.set_status, c.ex_id, "stopping")
        if name == step and (signal or order.index(step) >= order.index(last_write)):
            c.controller.request_shutdown()

    c.controller = ExecutionController(
        c.ex, c.store, c.settings, host="127.0.0.1", port=c.port, on_step=on_step
    )
    return seen


def assert_stop_won(ex: dict[str, object], *, allow_completed: bool = False) -> None:
    allowed = ("stopping", "completed") if allow_completed else ("stopping",)
    assert ex["_status"] in allowed, (ex["_status"], ex.get("_failureReason"))
    assert "_failureReason" not in ex
    assert ex.get("_has_errors") in (None, False)


@pytest.mark.parametrize("signal", [False, True], ids=["status-only", "status-and-sigterm"])
@pytest.mark.parametrize("step", FRESH_STEPS)
async def test_stop_at_each_start_up_step(tmp_path: Path, step: str, signal: bool) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}], "lifecycle": "persistent"})
    # The allocator has not written initializing yet when the controller process comes up.
    c.store.set_status(c.ex_id, "scheduling")
    seen = with_stop_at(c, step, signal=signal, last_write="status_written")
    run = asyncio.create_task(c.controller.run(handle_signals=False))
    if step != "serving":
        await wait_step(seen, "serving")
        await asyncio.to_thread(c.store.set_status, c.ex_id, "initializing")  # the allocator
    assert await asyncio.wait_for(run, WAIT) == 0
    assert_stop_won(c.store.get_execution(c.ex_id))
    later = seen[seen.index(step) + 1 :]
    # At most the status read and the reader's construction follow; nothing is written, no
    # slicing starts.
    assert set(later) <= {"allocated", "slicers_made"}, seen
    if order_of(step) < order_of("status_written"):
        assert "status_written" not in seen and c.slices() == []
    c.close()


def order_of(step: str) -> int:
    return list(STARTUP_STEPS).index(step)


async def wait_step(seen: list[str], step: str) -> None:
    """Bounded polling for a step the controller reports (no event to wait on from here)."""

    async def poll() -> None:
        while step not in seen:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), WAIT)


@pytest.mark.parametrize("signal", [False, True], ids=["status-only", "status-and-sigterm"])
@pytest.mark.parametrize("step", STARTUP_STEPS)
async def test_stop_at_each_step_of_a_recovery(
    tmp_path: Path, test_ops: None, step: str, signal: bool
) -> None:
    ops = [GEN, {"_op": "fail_on", "fail_at": [300], "attempts": 1}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 0})
    await c.start(workers=1)
    assert (await c.finish())["_status"] == "failed"
    recovery_of(c)  # re-run the failed slice, then go on slicing
    seen = with_stop_at(c, step, signal=signal, last_write="slicers_initialized")
    run = asyncio.create_task(c.controller.run(handle_signals=False))
    c.add_worker()
    assert await asyncio.wait_for(run, WAIT) == 0
    for worker in c.workers:
        worker.request_shutdown()  # the backend's SIGTERM reaches the workers too
    for task in c.worker_tasks:
        assert await asyncio.wait_for(task, WAIT) == 0
    # A once job may finish its slices before the stop takes effect: "completed" is the one
    # status a stopping execution may still get (docs/execution-lifecycle.md).
    assert_stop_won(c.store.get_execution(c.ex_id), allow_completed=step == "slicing")
    assert "slicing" not in seen[seen.index(step) + 1 :], seen
    c.close()
