"""The persistent-job slice-failure watch dog after the master wrote another status.

A ``failing`` persistent execution that is paused and resumed gets ``running`` from the master.
If its slices keep failing, the status must become ``failing`` again (before this rule the watch
dog was still in its probation loop and never wrote it again: ``running`` while every slice
failed, until the next success-only window).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .harness import Cluster, test_ops, wait_until

__all__ = ["test_ops"]

#: Every slice of a persistent ``data_generator`` with ``size`` 10 fails.
ALWAYS_FAIL = {"_op": "fail_on", "fail_at": list(range(0, 1_000_000, 10))}


async def test_failing_again_after_a_resume_while_slices_still_fail(tmp_path: Path, test_ops: None) -> None:
    ops = [{"_op": "data_generator", "size": 10}, ALWAYS_FAIL]
    c = Cluster(tmp_path, {"lifecycle": "persistent", "operations": ops, "probation_window": 100})
    statuses: list[str] = []
    real = c.store.set_status

    def record(ex_id: str, status: str, fields: Any = None) -> Any:
        statuses.append(status)
        return real(ex_id, status, fields)

    c.store.set_status = record  # type: ignore[method-assign]
    await c.start(workers=1)
    # The watch dog may write ``failing`` again before this check runs (a same-status write).
    await wait_until(lambda: statuses[:2] == ["running", "failing"])
    # What the master writes for _pause and _resume (after the controller acknowledged).
    real(c.ex_id, "paused")
    real(c.ex_id, "running")
    resumed_at = len(statuses)
    await wait_until(lambda: c.store.get_execution(c.ex_id)["_status"] == "failing")
    assert "failing" in statuses[resumed_at:]
    assert set(statuses) == {"running", "failing"}
    ex = c.store.get_execution(c.ex_id)
    assert ex["_failureReason"] == (
        f"execution {c.ex_id} has encountered a processing error, reason: slice failure watch dog"
    )
    c.controller.request_shutdown()
    assert (await c.finish())["_status"] == "terminated"
    c.close()
